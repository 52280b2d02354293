#!/usr/bin/env bash
# Runs the waiting-page browser tests against a real urr-queue on loopback,
# with the Redis of the local stack (scripts/stack up; eval "$(scripts/stack env)").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
: "${URR_REDIS_URL:?run: eval \"\$(scripts/stack env)\"}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/urr/target}"

if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "installing chromium (apt)" >&2
  sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi
(cd "$here" && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund >&2; })

cargo build --quiet --locked -p urr-queue --bin urr-queue
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export URR_EVENT_ID="browser-$RANDOM$RANDOM"
export URR_USER_JWT_SECRET="browser-test-user-secret-$RANDOM$RANDOM"
export URR_QUEUE_URL="http://127.0.0.1:$port"
log="$(mktemp)"
# Plain HTTP on loopback, so the cookie cannot be Secure here; production keeps the default.
URR_LISTEN="127.0.0.1:$port" URR_ENTRY_TOKEN_KEY="browser-entry-$RANDOM" URR_VWR_SIGNING_KEY="browser-vwr-$RANDOM" \
  URR_COOKIE_SECURE=false URR_TICK_MS=200 URR_LOG_FORMAT=text \
  "$CARGO_TARGET_DIR/debug/urr-queue" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "$URR_QUEUE_URL/readyz" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat "$log" >&2; echo "urr-queue exited" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$URR_QUEUE_URL/readyz" >/dev/null || { cat "$log" >&2; exit 1; }
cd "$here" && node --test waiting.test.mjs
