#!/usr/bin/env bash
# Builds the real Dockerfile with podman and runs the image as an operator would, offline: no
# Docker engine and no image registry are needed. The `debian:bookworm-slim` base is made from
# Debian's archive with `debootstrap --variant=minbase` (cached in target/container-base/), and the
# Dockerfile's build stage is replaced with the release binary through
# `--build-context build=DIR` (the full two-stage build needs crates.io and the rust image).
#
# Checks: /healthz; a token whose `iss` is the configured public URL; the server runs as uid 10001;
# `podman healthcheck run`; `portcullis user add --password-stdin` through `podman exec`; users and
# keys surviving a replaced container on named volumes; skopeo pushing to a real registry on the
# host with tokens from the container; the warning when no public URL is set; the message for a
# data directory the container's user cannot write. Removes every container, volume and image it
# created, by id. Needs root (rootful podman; debootstrap), debootstrap, runc, podman, skopeo,
# docker-registry, curl and python3 (scripts/install-deps.sh installs them).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ $(id -u) -ne 0 ]]; then
    exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME "$0" "$@"
fi

# The Dockerfile's runtime base, and the service user it creates.
BASE_IMAGE=debian:bookworm-slim
SERVICE_UID=10001
BASE_CACHE=target/container-base/bookworm-minbase.tar
PASSWORD=container-test-password

step() {
    printf 'container-test: %s\n' "$*"
}
fail() {
    printf 'container-test: FAILED: %s\n' "$*" >&2
    exit 1
}

work=$(mktemp -d)
chmod 0755 "$work"
containers=()
volumes=()
images=()
registry_pid=
cleanup() {
    local status=$?
    if [[ -n $registry_pid ]]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    if [[ $status -ne 0 ]]; then
        for id in "${containers[@]}"; do
            echo "--- container ${id:0:12} log (last 20 lines)" >&2
            podman logs --tail 20 "$id" >&2 || true
        done
        if [[ -f $work/registry.log ]]; then
            echo "--- registry log (last 20 lines)" >&2
            tail -n 20 "$work/registry.log" >&2
        fi
    fi
    for id in "${containers[@]}"; do podman rm --force --volumes --time 1 "$id" >/dev/null 2>&1 || true; done
    for id in "${volumes[@]}"; do podman volume rm --force "$id" >/dev/null 2>&1 || true; done
    # The image before its base.
    for ((i = ${#images[@]} - 1; i >= 0; i--)); do
        podman rmi --force "${images[i]}" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

# podman's configuration of this test's own: crun fails here with `setrlimit RLIMIT_NOFILE` and
# cgroup errors, runc works; the limits are ones any host grants. Nothing is written to /etc.
cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$work/containers.conf

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # wait_for WHAT COMMAND...: retries COMMAND for up to 30 s
    local what=$1
    shift
    for _ in $(seq 300); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    fail "$what did not come up within 30 s"
}

# --- The base image: bookworm minbase from Debian's archive, unless the real one is present.
if ! podman image exists "$BASE_IMAGE"; then
    if [[ ! -s $BASE_CACHE ]]; then
        step "debootstrap bookworm minbase into $BASE_CACHE (about a minute)"
        mkdir -p "$(dirname "$BASE_CACHE")"
        rootfs=$work/rootfs
        debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
            { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
        # What the slim image leaves out: documentation, translations, apt's lists and packages.
        rm -rf "$rootfs"/usr/share/{doc,man,info}/* "$rootfs"/var/lib/apt/lists/* \
            "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
        find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
        tar --numeric-owner -C "$rootfs" -cf "$BASE_CACHE.partial" .
        mv "$BASE_CACHE.partial" "$BASE_CACHE"
    fi
    step "import $BASE_CACHE as $BASE_IMAGE"
    images+=("$(podman import --quiet "$BASE_CACHE" "$BASE_IMAGE")")
fi

# --- The image, its build stage replaced by the release binary at the path that stage writes.
step "cargo build --release"
cargo build --release --locked --bin portcullis
build=$work/build-stage
mkdir -p "$build/src/target/release"
cp target/release/portcullis "$build/src/target/release/portcullis"
strip "$build/src/target/release/portcullis"
step "podman build"
podman build --pull=never --format docker --build-context "build=$build" \
    --iidfile "$work/image.id" --quiet . >/dev/null
image=$(cat "$work/image.id")
images+=("$image")
size=$(podman image inspect --format '{{.Size}}' "$image")
step "image ${image#sha256:} is $((size / 1000000)) MB"

# --- No public URL: the server starts and warns, and no printed URL names 0.0.0.0.
config=$(podman run --rm --no-healthcheck "$image" registry-config 2>&1)
grep -q 'WARNING: server.public_url is not set' <<<"$config" || fail "no warning in: $config"
if grep -q '://0\.0\.0\.0' <<<"$config"; then
    fail "a URL with 0.0.0.0 in the registry configuration: $config"
fi
cid=$(podman run -d --no-healthcheck "$image" 2>>"$work/podman.log") ||
    { cat "$work/podman.log" >&2; fail "podman run"; }
containers+=("$cid")
wait_for "the start-up warning" bash -c "podman logs '$cid' 2>&1 | grep -q 'WARN.*server.public_url is not set'"
podman rm --force --volumes --time 1 "$cid" >/dev/null 2>>"$work/podman.log"
step "without a public URL: warned at start and in registry-config, which has no 0.0.0.0 URL"

# --- A bind-mounted data directory the container's user cannot write: a message that says so.
mkdir -m 0755 "$work/root-owned"
if denied=$(podman run --rm --no-healthcheck -v "$work/root-owned:/var/lib/portcullis/data" "$image" migrate 2>&1); then
    fail "migrate succeeded in a directory owned by root: $denied"
fi
grep -q "/var/lib/portcullis/data is not writable by this process (uid $SERVICE_UID" <<<"$denied" ||
    fail "unexpected message for an unwritable data directory: $denied"
step "unwritable bind mount: $(tail -n 1 <<<"$denied")"

# --- The server, on named volumes, reached through a published port.
port=$(free_port)
public_url=http://localhost:$port
suffix=$(basename "$work")
for name in data keys; do
    volumes+=("$(podman volume create "portcullis-test-$name-${suffix,,}")")
done
run_server() { # sets cid
    # podman asks systemd for a timer to run the health check, and complains where there is
    # none: its complaints go to podman.log; `podman healthcheck run` runs the check below.
    cid=$(podman run -d -p "127.0.0.1:$port:5001" \
        -e "PORTCULLIS__SERVER__PUBLIC_URL=$public_url" \
        -v "${volumes[0]}:/var/lib/portcullis/data" \
        -v "${volumes[1]}:/var/lib/portcullis/keys" \
        "$image" 2>>"$work/podman.log") || { cat "$work/podman.log" >&2; fail "podman run"; }
    containers+=("$cid")
    wait_for "the server in container ${cid:0:12}" curl -fsS "http://127.0.0.1:$port/healthz"
}
run_server
step "container ${cid:0:12} serves /healthz on port $port"

pid=$(podman inspect --format '{{.State.Pid}}' "$cid")
uid=$(awk '/^Uid:/ { print $3 }' "/proc/$pid/status") # the effective uid
[[ $uid == "$SERVICE_UID" ]] || fail "the server runs as uid '$uid', not $SERVICE_UID"
podman healthcheck run "$cid" || fail "podman healthcheck run"
step "runs as uid $uid; podman healthcheck run: healthy"

printf '%s\n' "$PASSWORD" | podman exec -i "$cid" portcullis user add alice --password-stdin

token_url=$public_url/auth/realms/default/protocol/docker-v2/auth
token_payload() { # the claims of a token for alice, as JSON
    curl -fsS -u "alice:$PASSWORD" \
        "http://127.0.0.1:$port/auth/realms/default/protocol/docker-v2/auth?service=registry&scope=repository:alice/app:pull,push" |
        python3 -c '
import base64, json, sys
token = json.load(sys.stdin)["token"]
header, payload, _ = token.split(".")
pad = lambda part: part + "=" * (-len(part) % 4)
claims = json.loads(base64.urlsafe_b64decode(pad(payload)))
claims["kid"] = json.loads(base64.urlsafe_b64decode(pad(header))).get("kid")
print(json.dumps(claims))'
}
claim() { python3 -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
claims=$(token_payload)
iss=$(claim iss <<<"$claims")
[[ $iss == "$token_url" ]] || fail "token issuer '$iss', expected $token_url"
kid=$(claim kid <<<"$claims")
step "user added with podman exec; token iss $iss"

# --- Data and keys survive a replaced container.
podman rm --force --time 5 "$cid" >/dev/null 2>>"$work/podman.log"
run_server
claims=$(token_payload) || fail "alice cannot log in after the container was replaced"
[[ $(claim kid <<<"$claims") == "$kid" ]] || fail "the signing key changed with the container"
step "replaced by ${cid:0:12}: alice logs in, the signing key is the same"

# --- skopeo pushes to a real registry on the host with tokens from the container.
podman exec "$cid" cat /var/lib/portcullis/keys/default/bundle.pem >"$work/bundle.pem"
registry_port=$(free_port)
mkdir "$work/storage"
cat >"$work/registry.yml" <<EOF
version: 0.1
log: { level: info, formatter: text }
storage: { filesystem: { rootdirectory: $work/storage } }
http: { addr: "127.0.0.1:$registry_port", secret: container-test }
auth:
  token:
    realm: $token_url
    service: registry
    issuer: $token_url
    rootcertbundle: $work/bundle.pem
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
wait_for "docker-registry" curl -sS -o /dev/null "http://127.0.0.1:$registry_port/v2/"
# The image just built is the one pushed; skopeo reads podman's storage.
skopeo copy --quiet --dest-tls-verify=false --dest-creds "alice:$PASSWORD" \
    "containers-storage:${image#sha256:}" "docker://127.0.0.1:$registry_port/alice/app:v1" \
    2>>"$work/skopeo.log" || { cat "$work/skopeo.log" >&2; fail "skopeo copy"; }
digest=$(skopeo inspect --tls-verify=false --creds "alice:$PASSWORD" --format '{{.Digest}}' \
    "docker://127.0.0.1:$registry_port/alice/app:v1" 2>>"$work/skopeo.log") ||
    { cat "$work/skopeo.log" >&2; fail "skopeo inspect"; }
step "skopeo pushed the image to docker-registry with the container's tokens: $digest"
step "passed"
