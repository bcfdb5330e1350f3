#!/usr/bin/env bash
# Reproduce tests/fixtures/produce/: capture Produce requests written by reference
# Kafka clients (confluent-kafka/librdkafka, kafka-python) on their way to tansu.
#
#   scripts/capture-fixtures.sh [--out DIR] [NAME...]
#
# 1. creates a venv under $KLAMM_CACHE_DIR (default ~/.cache/klamm) with pinned clients;
# 2. starts tansu with scripts/test-broker, advertising the proxy's port so that
#    every client connection (bootstrap and leader) goes through the proxy;
# 3. runs scripts/capture-produce.py (recording proxy) in front of it;
# 4. runs scripts/capture-clients.py, which drives each client in a bounded
#    subprocess and writes DIR/*.bin + DIR/MANIFEST.json (default DIR:
#    tests/fixtures/produce), then re-verifies them;
# 5. stops the proxy and the broker (also on failure).
# NAMEs restrict the run to some captures (see CAPTURES in capture-clients.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${KLAMM_CACHE_DIR:-$HOME/.cache/klamm}"
VENV="$CACHE_DIR/capture-venv"
OUT="$ROOT/tests/fixtures/produce"
TOPIC="klamm-fixtures"
PYTHON="${PYTHON:-python3}"
PIP_PINS=(
    confluent-kafka==2.16.1
    kafka-python==3.0.12
    python-snappy==0.7.3
    cramjam==2.14.0
    lz4==4.4.5
    zstandard==0.25.0
    xxhash==4.1.0
)

while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) OUT="$(realpath -m "$2")"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; break ;;
        -*) echo "capture-fixtures: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done

log() { echo "capture-fixtures: $*" >&2; }

# 1. venv with pinned clients
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PIP_PINS[@]}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/klamm-capture.XXXXXX")"
PROXY_PID=""
cleanup() {
    local rc=$?
    if [[ -n "$PROXY_PID" ]]; then
        kill -TERM "$PROXY_PID" 2>/dev/null || true
        wait "$PROXY_PID" 2>/dev/null || true
    fi
    "$ROOT/scripts/test-broker" stop || true
    if [[ $rc -eq 0 && -z "${KLAMM_CAPTURE_KEEP:-}" ]]; then rm -rf "$WORK"; else log "kept $WORK for inspection"; fi
}
trap cleanup EXIT

# 2. broker on a free port, advertising the proxy's (also free) port
read -r BROKER_PORT PROXY_PORT < <("$PYTHON" -c 'import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])
for s in ss: s.close()')
"$ROOT/scripts/test-broker" stop >/dev/null 2>&1 || true
"$ROOT/scripts/test-broker" start --port "$BROKER_PORT" --advertise-port "$PROXY_PORT" >/dev/null

# 3. recording proxy
"$VENV/bin/python" "$ROOT/scripts/capture-produce.py" \
    --listen "127.0.0.1:$PROXY_PORT" --upstream "127.0.0.1:$BROKER_PORT" \
    --out-dir "$WORK/proxy" --cap-produce-version=-cap-produce-v2:2 >"$WORK/proxy.out" 2>"$WORK/proxy.log" &
PROXY_PID=$!
for _ in $(seq 100); do
    grep -q '^listening on' "$WORK/proxy.out" 2>/dev/null && break
    kill -0 "$PROXY_PID" 2>/dev/null || { cat "$WORK/proxy.log" >&2; log "proxy died"; exit 1; }
    sleep 0.05
done
grep -q '^listening on' "$WORK/proxy.out" || { log "proxy did not start"; exit 1; }

"$ROOT/scripts/test-broker" create-topic "$TOPIC" 1

# 4. clients
mkdir -p "$OUT"
ONLY=()
[[ $# -gt 0 ]] && ONLY=(--only "$@")
"$VENV/bin/python" "$ROOT/scripts/capture-clients.py" all \
    --bootstrap "127.0.0.1:$PROXY_PORT" --topic "$TOPIC" \
    --proxy-dir "$WORK/proxy" --fixtures-dir "$OUT" "${ONLY[@]}"
"$VENV/bin/python" "$ROOT/scripts/capture-clients.py" verify --fixtures-dir "$OUT"
