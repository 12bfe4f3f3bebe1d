#!/usr/bin/env bash
# Load benchmark of the token endpoint. Builds the release binary, then starts `portcullis serve`
# on a free loopback port with its own database (SQLite, or with --postgres a throwaway
# PostgreSQL from scripts/pg.sh), keys and munged, and drives each request path with wrk:
# anonymous, Basic warm (one user and password over and over: the credential cache's hit path
# once it exists, argon2 every time until then), Basic cold (wrong passwords for one user, each
# different, since a repeat is refused without a check: argon2 on every request, answered 401), refresh-token POST, access token, and MUNGE
# (single-use credentials made beforehand by `munge`). For each it reports requests/s, p50/p99
# latency, the server's CPU per request (utime + stime from /proc) and that CPU as a multiple
# of one raw ES256 signature, plus the server's peak RSS. The signature is measured during each
# run, on the server's CPU, by `examples/signature_probe.rs` (a warm sample of 40 signatures
# every 200 ms, CPU time, ~1% of a CPU): the median sample is the path's unit. This machine's
# speed drifts with its neighbours' load, by half within seconds, so only a unit measured over
# the same seconds divides a run's CPU fairly. For comparison the report also gives criterion's figure
# (`benches/token.rs`, `es256/raw_signature`) measured just before and just after each path.
# The server runs on the first half of the CPUs this script may use, and wrk, munged and
# PostgreSQL on the rest (taskset), as they would on other machines in production: sharing CPUs
# with the load generator made the server spend ~30% more CPU per request on this two-CPU machine
# (context switches and caches it lost to wrk), which is the pair's cost, not the server's. The
# server's default `server.workers` (one per CPU it may run on) follows. With one CPU, or with
# --shared-cpus, nothing is pinned.
# The Markdown table is printed and written to $CARGO_TARGET_DIR/bench-report.md (default
# target/). Missed targets and unexpected responses are listed in the report, not failures: the
# script fails only when something does not run. Everything it starts is stopped on exit.
#
#   scripts/bench.sh            # 10 s per path, wrk -t2 -c16
#   scripts/bench.sh --quick    # 2 s per path, wrk -t1 -c4 (CI: keeps the script working)
#   scripts/bench.sh --postgres # the same on PostgreSQL (report: bench-report-postgres.md)
#   scripts/bench.sh --shared-cpus # server and wrk on all CPUs (with any of the above)
#
# Needs wrk, curl, python3, munged and libmunge (scripts/install-deps.sh), root or a user that may
# run munged, and taskset (util-linux). wrk runs on the same machine: requests/s is the pair's,
# CPU per request the server's alone.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

quick=false
engine=sqlite
shared_cpus=false
for arg in "$@"; do
    case $arg in
        --quick) quick=true ;;
        --postgres) engine=postgres ;;
        --shared-cpus) shared_cpus=true ;;
        -h | --help) usage; exit 0 ;;
        *) echo "bench: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

if [[ $quick == true ]]; then
    duration_secs=2 threads=1 connections=4 mode="quick"
    max_munge_credentials=3000
else
    duration_secs=10 threads=2 connections=16 mode="full"
    max_munge_credentials=200000
fi
# The issue's targets: server CPU per request over the raw cost of one ES256 signature.
declare -A target=(
    [anonymous]="2" [basic-warm]="2.5" [refresh-post]="3.5" [access-token]="3.5" [munge]="3"
)

export PATH="$PATH:/usr/sbin:/sbin" # munged and mungekey
for cmd in cargo wrk curl python3 munged mungekey getconf taskset; do
    if ! command -v "$cmd" >/dev/null; then
        echo "bench: $cmd not found (scripts/install-deps.sh installs wrk, munge and python3)" >&2
        exit 1
    fi
done

target_dir=${CARGO_TARGET_DIR:-target}
bin="$target_dir/release/portcullis"
report="$target_dir/bench-report.md"
[[ $engine == postgres ]] && report="$target_dir/bench-report-postgres.md"
clk_tck=$(getconf CLK_TCK)

stage() {
    printf '\n==> %s\n' "$*" >&2
}

# --- CPUs: the server's, and the rest for wrk, munged and PostgreSQL --------------------------

# The CPUs this script may run on, one a line (taskset's list with its ranges expanded).
allowed_cpus() {
    taskset -pc $$ | sed 's/.*: //' | tr ',' '\n' |
        awk -F- '{ last = ($2 == "") ? $1 : $2; for (c = $1; c <= last; c++) print c }'
}
mapfile -t cpus < <(allowed_cpus)
if [[ $shared_cpus == true ]] || ((${#cpus[@]} < 2)); then
    server_cpus=$(IFS=,; echo "${cpus[*]}")
    client_cpus=$server_cpus
    cpu_layout="server, wrk, munged and the database share the machine's ${#cpus[@]} CPUs"
else
    half=$((${#cpus[@]} / 2))
    server_cpus=$(IFS=,; echo "${cpus[*]:0:half}")
    client_cpus=$(IFS=,; echo "${cpus[*]:half}")
    cpu_layout="the server on CPU $server_cpus (taskset), wrk, munged and the database on CPU $client_cpus"
fi
# (A background job is started with taskset itself, so that $! is the process, not a subshell.)
on_server() { taskset -c "$server_cpus" "$@"; }
on_clients() { taskset -c "$client_cpus" "$@"; }

# --- cleanup: the server, munged and the work directory, whatever happens --------------------

work=$(mktemp -d)
chmod 0711 "$work" # munged wants every directory above its socket searchable by all
server_pid=""
munge_socket="$work/munge/socket/munge.socket"
cleanup() {
    trap '' INT TERM # a second signal must not cut the cleanup short
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ -S $munge_socket ]]; then
        munged --stop -S "$munge_socket" >/dev/null 2>&1 || true
    fi
    if [[ -d $work/pg ]]; then
        scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build, and the unit: one raw ES256 signature ------------------------------------------

stage "build (release)"
cargo build --release --bin portcullis --example signature_probe
cargo bench --bench token --no-run
probe="$target_dir/release/examples/signature_probe"

# signature_us: one raw ES256 signature in µs, measured now: the middle estimate of criterion's
# "time: [low mid high]" line for es256/raw_signature, from a short run.
signature_us() {
    on_server cargo bench --bench token -- --quick --warm-up-time 1 --measurement-time 2 \
        es256/raw_signature >"$work/criterion.out" 2>&1
    local us
    us=$(awk '
        /^es256\/raw_signature/ { found = 1 }
        found && /time:/ {
            sub(/.*\[/, ""); value = $3; unit = $4
            scale = (unit == "ns") ? 0.001 : (unit == "ms") ? 1000 : (unit == "s") ? 1e6 : 1
            printf "%.2f", value * scale; exit
        }' "$work/criterion.out")
    if [[ -z $us ]]; then
        cat "$work/criterion.out" >&2
        echo "bench: no es256/raw_signature estimate in criterion's output" >&2
        exit 1
    fi
    echo "$us"
}

stage "raw ES256 signature (criterion es256/raw_signature), measured again after each path"
sign_us=$(signature_us)
sign_all=("$sign_us")
during_all=()
echo "one raw ES256 signature: $sign_us µs" >&2

# --- a private munged and the server ----------------------------------------------------------

stage "start munged and the server"
mkdir -p "$work/munge/socket"
chmod 0711 "$work/munge" "$work/munge/socket"
munge_key="$work/munge/munge.key"
mungekey -c -k "$munge_key"
chmod 0600 "$munge_key"
on_clients munged --key-file="$munge_key" -S "$munge_socket" \
    --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" \
    --seed-file="$work/munge/munged.seed"

cat >"$work/portcullis.toml" <<EOF
[realms.default.munge]
default_location = true

[[realms.default.munge.platforms]]
name = "bench"
key_file = "$munge_key"
EOF

export PORTCULLIS_CONFIG="$work/portcullis.toml"
export PORTCULLIS__SERVER__LISTEN="127.0.0.1:0"
if [[ $engine == postgres ]]; then
    PORTCULLIS__DATABASE__URL=$(on_clients scripts/pg.sh start "$work/pg")
    export PORTCULLIS__DATABASE__URL
else
    export PORTCULLIS__DATABASE__URL="sqlite://$work/db/portcullis.db"
fi
export PORTCULLIS__KEYS__DIR="$work/keys"
# The cold path sends wrong passwords for one user: keep lockout out of the way so that it
# measures argon2, not the lock.
export PORTCULLIS__LOCKOUT__ACCOUNT_THRESHOLD=1000000000
export PORTCULLIS__LOCKOUT__ADDRESS_THRESHOLD=1000000000
# The default log settings (level info, human lines): every request writes its audit line, to a
# file here, as it would to a log collector.
unset RUST_LOG PORTCULLIS__LOG__LEVEL PORTCULLIS__LOG__FORMAT

taskset -c "$server_cpus" "$bin" serve >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
port=""
for _ in $(seq 300); do
    port=$(sed -n 's|.*realm: http://localhost:\([0-9]*\)/.*|\1|p' "$work/server.out" | head -n 1)
    if [[ -n $port ]] || ! kill -0 "$server_pid" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [[ -z $port ]]; then
    echo "bench: the server did not start:" >&2
    cat "$work/server.err" >&2
    exit 1
fi
base="http://127.0.0.1:$port"
curl -fsS "$base/readyz" >/dev/null
auth_url="$base/auth/realms/default/protocol/docker-v2/auth"
echo "server pid $server_pid on $base" >&2

# --- accounts and secrets ---------------------------------------------------------------------

stage "users, access token, refresh token, MUNGE mapping"
alice_password="bench-alice-$RANDOM$RANDOM"
echo "$alice_password" | "$bin" user add alice --password-stdin >/dev/null
# carol only ever gets wrong passwords, so whatever that does to an account spares alice.
echo "bench-carol-$RANDOM$RANDOM" | "$bin" user add carol --password-stdin >/dev/null
access_token=$("$bin" token create --user alice --name bench 2>/dev/null)
refresh_token=$(curl -fsS -u "alice:$alice_password" \
    "$auth_url?service=registry&offline_token=true&client_id=bench" |
    sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p')
if [[ -z $refresh_token ]]; then
    echo "bench: no refresh_token in the offline_token response" >&2
    exit 1
fi
"$bin" munge map --platform bench --uid "$(id -u)" --user alice >/dev/null

# --- wrk ---------------------------------------------------------------------------------------

# Every wrk script ends with this done(): one machine-readable line, then the script's own.
report_lua='
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d p50_us=%.0f p99_us=%.0f non2xx=%d socket_errors=%d\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        e.status, e.connect + e.read + e.write + e.timeout))
    if report_extra then report_extra() end
end
'

# The server's utime + stime, in clock ticks (fields 14 and 15 of /proc/PID/stat, counted after
# the parenthesised command name, which may hold spaces).
cpu_ticks() {
    local stat
    stat=$(<"/proc/$server_pid/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

# The server's peak resident set, in MiB.
peak_rss_mib() {
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$server_pid/status"
}

# Field NAME of a line of NAME=VALUE words.
field() {
    sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" <<<"$2"
}

# run_wrk NAME DURATION LUA WRK-ARGS...: one wrk run; leaves its BENCH line in $wrk_line, the
# server's CPU ticks in $wrk_ticks and wrk's whole output in $work/NAME.wrk.
run_wrk() {
    local name=$1 duration=$2 lua=$3
    shift 3
    local script="$work/$name.lua" out="$work/$name.wrk"
    printf '%s\n%s\n' "$lua" "$report_lua" >"$script"
    stage "$name: wrk -t$threads -c$connections -d${duration}s"
    local before after
    before=$(cpu_ticks)
    if ! on_clients wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s "$script" "$@" >"$out" 2>&1; then
        cat "$out" >&2
        echo "bench: wrk failed on $name" >&2
        exit 1
    fi
    after=$(cpu_ticks)
    if ! kill -0 "$server_pid" 2>/dev/null; then
        cat "$out" "$work/server.err" >&2
        echo "bench: the server died during $name" >&2
        exit 1
    fi
    sed -n '/^Running/,$p' "$out" | grep -v '^BENCH ' >&2
    wrk_line=$(grep '^BENCH ' "$out")
    wrk_ticks=$((after - before))
    if (($(field requests "$wrk_line") == 0)); then
        echo "bench: no responses on $name" >&2
        exit 1
    fi
}

# Responses per second of the last run.
wrk_rate() {
    awk -v n="$(field requests "$wrk_line")" -v d="$(field duration_us "$wrk_line")" \
        'BEGIN { printf "%.0f", n / (d / 1e6) }'
}

rows=()
warnings=()
# run_path NAME EXPECT NOTE DURATION LUA WRK-ARGS...: measures one path and appends its table
# row; EXPECT is "2xx" or "non-2xx" (every response refused). The unit is the signature probe's
# figure over the run. Criterion's signature is measured before the run (unless the last
# measurement, in $sign_us, came just before) and after it (unless $sign_after is false).
sign_after=true
run_path() {
    local name=$1 expect=$2 note=$3 duration=$4 lua=$5
    shift 5
    if [[ -z $sign_us ]]; then
        sign_us=$(signature_us)
        sign_all+=("$sign_us")
    fi
    taskset -c "$server_cpus" "$probe" "$duration" >"$work/$name.probe" &
    local probe_pid=$!
    run_wrk "$name" "$duration" "$lua" "$@"
    wait "$probe_pid" || { echo "bench: the signature probe failed on $name" >&2; exit 1; }
    local probe_line during
    probe_line=" $(<"$work/$name.probe")"
    during=$(field signature_us "$probe_line")
    during_all+=("$(field low_us "$probe_line")" "$(field high_us "$probe_line")")
    echo "one raw ES256 signature during $name: $during µs ($(field samples "$probe_line") samples, $(field low_us "$probe_line")–$(field high_us "$probe_line") µs)" >&2
    local criterion=$sign_us
    if [[ $sign_after == true ]]; then
        local after
        after=$(signature_us)
        sign_all+=("$after")
        criterion=$(awk -v a="$sign_us" -v b="$after" 'BEGIN { printf "%.2f", (a + b) / 2 }')
        echo "one raw ES256 signature (criterion): $after µs (before and after $name: $criterion µs)" >&2
        sign_us=$after
    fi
    local requests non2xx socket_errors
    requests=$(field requests "$wrk_line")
    non2xx=$(field non2xx "$wrk_line")
    socket_errors=$(field socket_errors "$wrk_line")
    if [[ $expect == 2xx ]] && ((non2xx > 0)); then
        warnings+=("$name: $non2xx of $requests responses were not 2xx")
    elif [[ $expect == non-2xx ]] && ((non2xx != requests)); then
        warnings+=("$name: $((requests - non2xx)) of $requests responses were 2xx, expected none")
    fi
    if ((socket_errors > 0)); then
        warnings+=("$name: $socket_errors socket errors or timeouts (see wrk's output above)")
    fi
    rows+=("$(awk -v name="$name" -v note="$note" -v n="$requests" \
        -v d="$(field duration_us "$wrk_line")" -v p50="$(field p50_us "$wrk_line")" \
        -v p99="$(field p99_us "$wrk_line")" -v ticks="$wrk_ticks" -v hz="$clk_tck" \
        -v sign="$during" -v criterion="$criterion" -v target="${target[$name]:-}" -v bad="$non2xx" \
        -v sock="$socket_errors" -v rss="$(peak_rss_mib)" '
        function ms(us) { return (us < 1000) ? sprintf("%.2f", us / 1000) : sprintf("%.1f", us / 1000) }
        BEGIN {
            cpu = ticks / hz * 1e6 / n; ratio = cpu / sign
            verdict = (target == "") ? "—" : sprintf("≤ %s× %s", target, (ratio <= target) ? "met" : "**missed**")
            printf "| %s | %.0f | %s | %s | %.0f | %.1f | %.1f× | %s | %.1f | %.1f× | %d | %d / %d | %s | %s |",
                name, n / (d / 1e6), ms(p50), ms(p99), cpu, sign, ratio, verdict, criterion, cpu / criterion,
                n, bad, sock, rss, note
        }')")
}

# Other work on the machine skews every figure; the report shows how busy it was.
load_before=$(cut -d' ' -f1 /proc/loadavg)
common_scope="scope=repository:alice/app:pull,push"
basic() { printf 'Authorization: Basic %s' "$(printf '%s' "$1" | base64 -w0)"; }

run_path anonymous 2xx "no credentials; no access granted" "$duration_secs" "" \
    "$auth_url?service=registry&scope=repository:library/alpine:pull"
run_path basic-warm 2xx "alice, same password each time (verified-credential cache hit after the first)" \
    "$duration_secs" "" -H "$(basic "alice:$alice_password")" "$auth_url?service=registry&$common_scope"
# cold_lua FILE: each wrk thread sends its share of FILE's Authorization headers in turn,
# formatted before the run (as munge_lua does): a different wrong password each time, since a
# repeat of a wrong password already counted is refused without an argon2 check.
cold_lua() {
    cat <<EOF
local threads = {}
function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end
function init(args)
    requests, used = {}, 0
    local n = 0
    for line in io.lines("$1") do
        if n % $threads == id then
            wrk.headers["Authorization"] = line
            table.insert(requests, wrk.format())
        end
        n = n + 1
    end
end
function request()
    used = used % #requests + 1
    return requests[used]
end
EOF
}
python3 -c 'import base64, sys
for i in range(int(sys.argv[1])):
    print("Basic " + base64.b64encode(f"carol:wrong-{i}".encode()).decode())' 20000 >"$work/cold.headers"
run_path basic-cold non-2xx "carol, a different wrong password each time: one argon2 check per request, all answered 401" \
    "$duration_secs" "$(cold_lua "$work/cold.headers")" "$auth_url?service=registry&$common_scope"
refresh_lua="wrk.method = \"POST\"
wrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"
wrk.body = \"grant_type=refresh_token&client_id=bench&service=registry&$common_scope&refresh_token=$refresh_token\""
run_path refresh-post 2xx "grant_type=refresh_token form (database lookup)" "$duration_secs" \
    "$refresh_lua" "$auth_url"
run_path access-token 2xx "Basic alice:<access token> (database lookup, no argon2)" "$duration_secs" "" \
    -H "$(basic "alice:$access_token")" "$auth_url?service=registry&$common_scope"
access_rate=$(wrk_rate)

# --- MUNGE: single-use credentials, made beforehand --------------------------------------------

# make_credentials N FILE: N credentials from munged (uid of this script, empty payload, munged's
# default cipher, MAC and ttl), one a line, made by one process per CPU through libmunge's
# munge_encode (Python's ctypes: ~3,000 a second each, where one `munge` process per credential
# took ~2 ms), so that the MUNGE run lasts as long as the others.
make_credentials() {
    local count=$1 file=$2 jobs pids=() j pid
    jobs=$(nproc)
    for ((j = 0; j < jobs; j++)); do
        on_clients python3 - "$(((count + j) / jobs))" "$munge_socket" >"$file.$j" <<'EOF' &
import ctypes, sys

MUNGE_OPT_SOCKET = 8  # munge.h, enum munge_opt
libmunge = ctypes.CDLL("libmunge.so.2")
libc = ctypes.CDLL(None)
libmunge.munge_ctx_create.restype = ctypes.c_void_p
libmunge.munge_ctx_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
libmunge.munge_encode.argtypes = [
    ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
libc.free.argtypes = [ctypes.c_void_p]
context = libmunge.munge_ctx_create()
if not context or libmunge.munge_ctx_set(context, MUNGE_OPT_SOCKET, sys.argv[2].encode()) != 0:
    sys.exit("bench: cannot set up a libmunge context")
credential = ctypes.c_void_p()
for _ in range(int(sys.argv[1])):
    status = libmunge.munge_encode(ctypes.byref(credential), context, None, 0)
    if status != 0:
        sys.exit(f"bench: munge_encode failed with status {status}")
    sys.stdout.write(ctypes.string_at(credential.value).decode() + "\n")
    libc.free(credential)
EOF
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid"
    done
    cat "$file".* >"$file"
    rm -f "$file".*
}

# munge_lua FILE: each wrk thread sends its own share of FILE's credentials, each once; when they
# run out it repeats its last one, which the replay cache refuses (counted and reported). The
# requests are formatted before the run, so that wrk spends no more per request here than on the
# other paths. Formatting each as it went cost wrk a sixth of its rate and the server ~20 µs of CPU
# per request (143 against 123 µs in one run): fewer requests ready at each wakeup, more wakeups.
munge_lua() {
    cat <<EOF
local threads = {}
function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end
function init(args)
    requests, used, replayed = {}, 0, 0
    local n = 0
    for line in io.lines("$1") do
        if n % $threads == id then
            wrk.headers["authentication"] = line
            table.insert(requests, wrk.format())
        end
        n = n + 1
    end
end
function request()
    used = used + 1
    local request = requests[used]
    if request == nil then
        replayed = replayed + 1
        request = requests[#requests]
    end
    return request
end
function report_extra()
    local used, replayed = 0, 0
    for _, thread in ipairs(threads) do
        used = used + thread:get("used")
        replayed = replayed + thread:get("replayed")
    end
    io.write(string.format("MUNGE sent=%d replayed=%d\n", used - replayed, replayed))
end
EOF
}

munge_url="$auth_url?service=registry&scope=repository:alice/app:pull"
# Make about as many credentials as a run uses: a 1 s probe with enough for the access-token
# path's rate, then the run sized for twice the probe's rate, shortened when that would take more
# than $max_munge_credentials.
probe_credentials=$((access_rate * 5 / 4 + connections))
((probe_credentials <= max_munge_credentials)) || probe_credentials=$max_munge_credentials
stage "MUNGE probe: $probe_credentials credentials"
make_credentials "$probe_credentials" "$work/probe.credentials"
run_wrk munge-probe 1 "$(munge_lua "$work/probe.credentials")" "$munge_url"
probe_rate=$(wrk_rate)
if (($(field replayed "$(grep '^MUNGE ' "$work/munge-probe.wrk")") > 0)); then
    probe_rate=$((probe_rate > access_rate ? probe_rate : access_rate)) # ran out: rate unknown
fi
munge_rate=$((probe_rate * 2 + 1))
munge_duration=$duration_secs
if ((munge_rate * munge_duration > max_munge_credentials)); then
    munge_duration=$((max_munge_credentials / munge_rate))
    ((munge_duration >= 1)) || munge_duration=1
fi
credentials=$((munge_rate * munge_duration + 4 * connections))
stage "MUNGE: $credentials credentials"
make_credentials "$credentials" "$work/credentials"
sign_us="" # measured again after making the credentials, just before the run
run_path munge 2xx "authentication header, empty payload, uid mapped to alice (replay-cache write)" \
    "$munge_duration" "$(munge_lua "$work/credentials")" "$munge_url"
munge_line=$(grep '^MUNGE ' "$work/munge.wrk")
if (($(field replayed "$munge_line") > 0)); then
    warnings+=("munge: the $credentials credentials ran out; $(field replayed "$munge_line") requests were replays")
fi

# --- password flood -----------------------------------------------------------------------------
# 1000 connections sending wrong passwords (the queue refuses what the pool cannot take) while a
# second wrk keeps asking with an access token: the token requests' latency during the flood, and
# the server's peak memory, are what the flood must not ruin.
flood_secs=$((duration_secs > 4 ? duration_secs : 4))
stage "password flood: wrk -t2 -c1000 -d${flood_secs}s wrong passwords, with access-token requests beside it"
saved_threads=$threads
threads=2 # the flood's wrk threads
cold_lua "$work/cold.headers" >"$work/flood.lua"
threads=$saved_threads
taskset -c "$client_cpus" wrk -t2 -c1000 -d"${flood_secs}s" -s "$work/flood.lua" \
    "$auth_url?service=registry&$common_scope" >"$work/flood.wrk" 2>&1 &
flood_pid=$!
sleep 1
sign_after=false # the flood would still be running: criterion's figure is the one before it
saved_connections=$connections
connections=4
run_path access-during-flood 2xx "access-token requests while 1000 connections send wrong passwords" \
    $((flood_secs - 2)) "" -H "$(basic "alice:$access_token")" "$auth_url?service=registry&$common_scope"
connections=$saved_connections
wait "$flood_pid" || warnings+=("the flood's wrk failed: $(tail -n 3 "$work/flood.wrk")")
flood_summary=$(grep -E 'requests in|Non-2xx|Socket errors' "$work/flood.wrk" | tr -s ' ' | tr '\n' ';')
if ! grep -q 'Socket errors' "$work/flood.wrk"; then
    flood_summary+=" no socket errors or timeouts (wrk's timeout: 2 s)."
fi

# --- report ------------------------------------------------------------------------------------

if [[ $engine == postgres ]]; then
    database="PostgreSQL $(psql "$PORTCULLIS__DATABASE__URL" -Atc 'SHOW server_version') on the same machine (scripts/pg.sh: durability off)"
else
    # The SQLite header's write-version byte: 1 rollback journal, 2 WAL.
    case $(od -An -tu1 -j18 -N1 "$work/db/portcullis.db" | tr -d ' ') in
        2) database="SQLite (WAL) in a temporary directory" ;;
        1) database="SQLite (rollback journal, not WAL) in a temporary directory" ;;
        *) database="SQLite (unknown journal mode) in a temporary directory" ;;
    esac
fi
log_problems=$(grep -c -E ' (WARN|ERROR) ' "$work/server.err" || true)
if ((log_problems > 0)); then
    warnings+=("the server logged $log_problems warnings or errors: $(grep -m1 -E ' (WARN|ERROR) ' "$work/server.err")")
fi
range() { printf '%s\n' "$@" | sort -n | awk 'NR == 1 { low = $1 } { high = $1 } END { print low "–" high }'; }
sign_range=$(range "${sign_all[@]}")
during_range=$(range "${during_all[@]}")
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mode_flag=""
[[ $quick == true ]] && mode_flag=" --quick"
[[ $engine == postgres ]] && mode_flag+=" --postgres"
[[ $shared_cpus == true ]] && mode_flag+=" --shared-cpus"
{
    echo "## Load benchmark ($mode mode, $(date -u +%Y-%m-%d))"
    echo
    echo "Machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, $(uname -sr); $(rustc --version);"
    echo "1-minute load average $load_before before the runs, $(cut -d' ' -f1 /proc/loadavg) after."
    echo
    echo "Method: \`scripts/bench.sh$mode_flag\`: release build, default settings (log level info: one"
    echo "audit line per request, written to a file); $database;"
    echo "$cpu_layout; \`server.workers\` = one per CPU the server may use;"
    echo "\`wrk -t$threads -c$connections -d${duration_secs}s\` (MUNGE: ${munge_duration} s, with $credentials single-use credentials made beforehand, of which"
    echo "$(field sent "$munge_line") were sent). CPU per request is the server's utime + stime from /proc over"
    echo "the run divided by the responses wrk counted. The unit (\`signature µs\`) is one raw ES256 signature"
    echo "(aws-lc-rs, key parsed once, warm), measured during the path's run on the server's CPU in CPU time"
    echo "by \`examples/signature_probe.rs\` (40 signatures every 200 ms; the median sample); the samples ranged over $during_range µs."
    echo "\`criterion µs\` is criterion's \`es256/raw_signature\` just before and just after the path (mean of"
    echo "the two; over the whole run $sign_range µs), and \`× criterion\` the path's CPU over it."
    echo "Peak RSS is the server's VmHWM after each path. The flood: ${flood_summary:-no summary}."
    echo
    echo "| path | req/s | p50 ms | p99 ms | CPU µs/req | signature µs | × signature | target | criterion µs | × criterion | responses | non-2xx / socket errors | peak RSS MiB | what |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${rows[@]}"
    if ((${#warnings[@]} > 0)); then
        echo
        printf -- '- warning: %s\n' "${warnings[@]}"
    fi
} >"$report"

stage "report ($report)"
cat "$report"
