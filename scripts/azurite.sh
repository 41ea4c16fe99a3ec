#!/usr/bin/env bash
# Starts, stops or reports a local Azurite (the Azure Storage emulator, pinned in package.json)
# for the storage tests. Real Azurite, never a mock.
#
#   scripts/azurite.sh start    start in the background, wait until the blob endpoint answers,
#                               print `export AZURITE_...=...` lines (so `eval "$(... start)"`
#                               works; messages go to stderr)
#   scripts/azurite.sh stop     stop it (TERM, then KILL after 10 s) and forget its pid
#   scripts/azurite.sh status   say whether it runs (exit 0) or not (exit 3)
#   scripts/azurite.sh env      print the export lines of the running instance
#
# Inputs (all optional):
#   AZURITE_DIR         instance folder: pid file, log, env file, data (default .azurite/default);
#                       `make test` uses a fresh .azurite/test.XXXXXX per run so runs never collide
#   AZURITE_BLOB_PORT, AZURITE_QUEUE_PORT, AZURITE_TABLE_PORT
#                       fixed ports; by default Azurite's own 10000-10002 when all are free
#                       (so `UseDevelopmentStorage=true` works), else free ports picked at random
#
# Outputs (printed and written to $AZURITE_DIR/env):
#   AZURITE_BLOB_PORT, AZURITE_QUEUE_PORT, AZURITE_TABLE_PORT,
#   AZURITE_BLOB_ENDPOINT, AZURITE_QUEUE_ENDPOINT (http://127.0.0.1:PORT/devstoreaccount1),
#   AZURITE_CONNECTION_STRING (account key + explicit endpoints: ready for
#   INGEST_STORAGE_CONNECTION_STRING or AzureWebJobsStorage)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${AZURITE_DIR:-$root/.azurite/default}"
case "$dir" in /*) ;; *) dir="$root/$dir" ;; esac
pid_file="$dir/azurite.pid"
env_file="$dir/env"
log_file="$dir/azurite.log"
bin="$root/node_modules/.bin/azurite"

# Azurite's well-known development account: public, documented by Microsoft, not a secret.
account=devstoreaccount1
account_key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

say() { echo "azurite: $*" >&2; }

# Alive and not a zombie (a child that died at start stays a zombie until this script exits).
alive() {
    kill -0 "$1" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

# The pid of the running instance of this folder, if any; a stale pid file (process gone or
# pid reused by something that is not Azurite) is removed.
running_pid() {
    [[ -f "$pid_file" ]] || return 1
    local pid
    pid="$(<"$pid_file")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" \
        && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q azurite; then
        echo "$pid"
        return 0
    fi
    rm -f "$pid_file"
    return 1
}

port_is_free() {
    node -e '
        const s = require("net").createServer();
        s.once("error", () => process.exit(1));
        s.listen(Number(process.argv[1]), "127.0.0.1", () => s.close(() => process.exit(0)));
    ' "$1"
}

free_port() {
    node -e '
        const s = require("net").createServer();
        s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => console.log(p)); });
    '
}

blob_answers() {
    # Any HTTP answer counts (an anonymous list is refused with 403): the server is up.
    node -e '
        const req = require("http").get(process.argv[1], { timeout: 1000 }, (res) => { res.resume(); process.exit(0); });
        req.on("timeout", () => req.destroy());
        req.on("error", () => process.exit(1));
    ' "http://127.0.0.1:$1/$account?comp=list"
}

write_env() {
    local blob="http://127.0.0.1:$1/$account" queue="http://127.0.0.1:$2/$account" table="http://127.0.0.1:$3/$account"
    cat >"$env_file" <<EOF
export AZURITE_BLOB_PORT=$1
export AZURITE_QUEUE_PORT=$2
export AZURITE_TABLE_PORT=$3
export AZURITE_BLOB_ENDPOINT=$blob
export AZURITE_QUEUE_ENDPOINT=$queue
export AZURITE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=$account;AccountKey=$account_key;BlobEndpoint=$blob;QueueEndpoint=$queue;TableEndpoint=$table;'
EOF
}

start() {
    if pid="$(running_pid)"; then
        say "already running (pid $pid, $dir)"
        cat "$env_file"
        return 0
    fi
    if [[ ! -x "$bin" ]]; then
        say "$bin is missing: run \`npm ci\` (or \`make test\`, which does) first"
        return 1
    fi
    mkdir -p "$dir/data"

    local fixed=0 attempt blob queue table pid
    [[ -n "${AZURITE_BLOB_PORT:-}${AZURITE_QUEUE_PORT:-}${AZURITE_TABLE_PORT:-}" ]] && fixed=1
    for attempt in 1 2 3; do
        if ((fixed)); then
            blob="${AZURITE_BLOB_PORT:-$(free_port)}"
            queue="${AZURITE_QUEUE_PORT:-$(free_port)}"
            table="${AZURITE_TABLE_PORT:-$(free_port)}"
        elif ((attempt == 1)) && port_is_free 10000 && port_is_free 10001 && port_is_free 10002; then
            blob=10000 queue=10001 table=10002
        else
            blob="$(free_port)" queue="$(free_port)" table="$(free_port)"
        fi

        # setsid: Azurite leads its own process group, so `stop` can end it and anything it
        # spawned, and a Ctrl-C in the calling terminal is left to `stop`.
        setsid "$bin" --silent --skipApiVersionCheck --loose --disableTelemetry \
            --location "$dir/data" \
            --blobHost 127.0.0.1 --blobPort "$blob" \
            --queueHost 127.0.0.1 --queuePort "$queue" \
            --tableHost 127.0.0.1 --tablePort "$table" \
            </dev/null >"$log_file" 2>&1 &
        pid=$!
        echo "$pid" >"$pid_file"

        local waited=0
        while alive "$pid" && ! blob_answers "$blob"; do
            sleep 0.2
            waited=$((waited + 1))
            if ((waited > 300)); then
                say "blob endpoint on port $blob did not answer within 60 s; log: $log_file"
                stop
                return 1
            fi
        done
        if alive "$pid"; then
            write_env "$blob" "$queue" "$table"
            say "running (pid $pid): blob $blob, queue $queue, table $table; data in $dir/data"
            cat "$env_file"
            return 0
        fi
        rm -f "$pid_file"
        say "exited at start (attempt $attempt, ports $blob/$queue/$table); log:"
        sed 's/^/  /' "$log_file" >&2 || true
        ((fixed)) && return 1
    done
    return 1
}

stop() {
    local pid
    if ! pid="$(running_pid)"; then
        say "not running ($dir)"
        rm -f "$env_file"
        return 0
    fi
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local waited=0
    while alive "$pid"; do
        sleep 0.1
        waited=$((waited + 1))
        if ((waited > 100)); then
            say "pid $pid ignored TERM for 10 s: killing it"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            break
        fi
    done
    rm -f "$pid_file" "$env_file"
    say "stopped (pid $pid)"
}

status() {
    local pid
    if pid="$(running_pid)"; then
        say "running (pid $pid, $dir)"
        cat "$env_file"
        return 0
    fi
    say "not running ($dir)"
    return 3
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) running_pid >/dev/null && cat "$env_file" ;;
    *)
        echo "usage: $0 start|stop|status|env" >&2
        exit 2
        ;;
esac
