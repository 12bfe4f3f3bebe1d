#!/usr/bin/env bash
# Runs a throwaway PostgreSQL cluster for tests.
#
#   scripts/pg.sh start DIR   create the cluster in DIR if absent (trust auth),
#                             start it on 127.0.0.1:<free port> and a unix socket
#                             in DIR, wait until it accepts connections, and print
#                             one line: postgres://postgres@127.0.0.1:PORT/postgres
#                             (when it already runs, just print the URL again;
#                             restarted, it takes its former port when that is free)
#   scripts/pg.sh stop DIR    stop it (fast shutdown); no-op when not running
#
# As root, the server runs as the `postgres` OS user, which must be able to
# enter DIR's parent directories. Durability is switched off: data is disposable.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop DIR" >&2
    exit 2
}

[[ $# -eq 2 ]] || usage
action=$1
dir=$2

pg_bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
if [[ -z $pg_bin || ! -x $pg_bin/initdb ]]; then
    echo "pg.sh: no PostgreSQL server under /usr/lib/postgresql; run scripts/install-deps.sh" >&2
    exit 1
fi

# Run a PostgreSQL program as the cluster's owner (root may not run postgres).
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url_for_port() {
    echo "postgres://postgres@127.0.0.1:$1/postgres"
}

# Line 4 of postmaster.pid is the port the running server listens on.
running_port() {
    sed -n 4p "$data/postmaster.pid"
}

is_running() {
    [[ -f $data/postmaster.pid ]] && as_owner "$pg_bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

init_cluster() {
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then
            echo "pg.sh: user postgres cannot write $dir (check its parents' permissions)" >&2
            exit 1
        fi
    fi
    as_owner "$pg_bin/initdb" -D "$data" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    as_owner tee -a "$data/postgresql.conf" >/dev/null <<EOF

# scripts/pg.sh: throwaway test cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

start() {
    # A unix socket path is limited to 107 bytes: DIR/.s.PGSQL.NNNNN
    if [[ ${#dir} -gt 90 ]]; then
        echo "pg.sh: DIR path too long for a unix socket: $dir" >&2
        exit 1
    fi
    if is_running; then
        url_for_port "$(running_port)"
        return
    fi
    [[ -f $data/PG_VERSION ]] || init_cluster
    local port
    # A restarted cluster takes its former port again when it is free: its clients' URLs name it.
    for port in $(cat "$dir/port" 2>/dev/null) $(seq 55432 55531); do
        port_in_use "$port" && continue
        if as_owner "$pg_bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 30 \
            -o "-p $port" start >/dev/null 2>&1; then
            # pg_ctl -w already waited; confirm over TCP as the tests will connect.
            for _ in $(seq 1 100); do
                if "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
                    echo "$port" >"$dir/port"
                    url_for_port "$port"
                    return
                fi
                sleep 0.1
            done
        fi
        as_owner "$pg_bin/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true
        # Lost a race for the port: try the next one. Any other failure is fatal.
        if ! tail -n 5 "$dir/postgres.log" | grep -q 'Address already in use'; then
            break
        fi
    done
    tail -n 20 "$dir/postgres.log" >&2 || true
    echo "pg.sh: could not start PostgreSQL; log: $dir/postgres.log" >&2
    exit 1
}

stop() {
    if is_running; then
        as_owner "$pg_bin/pg_ctl" -D "$data" stop -m fast -w >/dev/null
    fi
}

case $action in
    start | stop)
        if [[ $action == stop && ! -d $dir ]]; then
            exit 0
        fi
        mkdir -p "$dir"
        dir=$(cd "$dir" && pwd)
        data=$dir/data
        "$action"
        ;;
    *) usage ;;
esac
