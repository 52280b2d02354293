#!/usr/bin/env bash
# The waiting-page browser tests, twice:
#   1. against fake-queue.mjs (the API contract, incl. a 429 and dropped connections);
#   2. against a real urr-queue on loopback with the Redis of the local stack
#      (scripts/stack up; eval "$(scripts/stack env)"), moved by admit-hook.mjs.
# URR_BROWSER_TESTS=fake runs only the first (no Rust build, no Redis);
# URR_BROWSER_TEST_FILES picks the files (default: every *.test.mjs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/urr/target}"

if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "installing chromium (apt)" >&2
  sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi
(cd "$here" && { { [ -d node_modules/playwright-core ] && [ -d node_modules/axe-core ]; } || npm ci --no-audit --no-fund >&2; })

echo "== waiting page against fake-queue.mjs" >&2
# One file at a time: against a real service they share its room and queue.
(cd "$here" && env -u URR_QUEUE_URL -u URR_ADMIT_URL -u URR_TEST_ROOM node --test --test-concurrency=1 ${URR_BROWSER_TEST_FILES:-./*.test.mjs})
[ "${URR_BROWSER_TESTS:-all}" = fake ] && exit 0

echo "== waiting page against a real urr-queue" >&2
: "${URR_REDIS_URL:?run: eval \"\$(scripts/stack env)\" (or URR_BROWSER_TESTS=fake)}"
(cd "$root" && cargo build --quiet --locked -p urr-queue --bin urr-queue)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
# The internal listener too: its default 0.0.0.0:9090 may be taken on a
# shared machine.
internal_port="$(free_port)"
hook_port="$(free_port)"
export URR_EVENT_ID="browser-$RANDOM$RANDOM"
# Keys of at least 32 bytes: the services refuse shorter ones at start-up.
key() { printf 'browser-test-%s-key-%s%s%s' "$1" "$RANDOM" "$RANDOM" "0123456789abcdef"; }
export URR_USER_JWT_SECRET="$(key user)"
export URR_QUEUE_URL="http://127.0.0.1:$port"
export URR_ADMIT_URL="http://127.0.0.1:$hook_port/admit"
export URR_TEST_ROOM="$URR_EVENT_ID"
export URR_TEST_EVENT="$URR_EVENT_ID"
log="$(mktemp)"
hook_log="$(mktemp)"
# Plain HTTP on loopback, so the cookie cannot be Secure here; production keeps the default.
URR_LISTEN="127.0.0.1:$port" URR_INTERNAL_LISTEN="127.0.0.1:$internal_port" URR_ENTRY_TOKEN_KEY="$(key entry)" URR_VWR_SIGNING_KEY="$(key vwr)" \
  URR_COOKIE_SECURE=false URR_TICK_MS=200 URR_LOG_FORMAT=text \
  "$CARGO_TARGET_DIR/debug/urr-queue" >"$log" 2>&1 &
server=$!
PORT="$hook_port" node "$here/admit-hook.mjs" >"$hook_log" 2>&1 &
hook=$!
cleanup() {
  kill "$server" "$hook" 2>/dev/null || true
  wait "$server" "$hook" 2>/dev/null || true
  rm -f "$log" "$hook_log"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "$URR_QUEUE_URL/readyz" >/dev/null 2>&1 && grep -q 'admit hook on' "$hook_log" && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; echo "urr-queue exited" >&2; exit 1; }
  kill -0 "$hook" 2>/dev/null || { cat "$hook_log" >&2; echo "admit hook exited" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$URR_QUEUE_URL/readyz" >/dev/null || { cat "$log" >&2; exit 1; }
cd "$here" && node --test --test-concurrency=1 ${URR_BROWSER_TEST_FILES:-./*.test.mjs} || { echo "--- urr-queue log" >&2; tail -n 50 "$log" >&2; cat "$hook_log" >&2; exit 1; }
