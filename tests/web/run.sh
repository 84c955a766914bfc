#!/usr/bin/env bash
# Browser test of the demo web client: builds message-service, starts it on the embedded profile
# (a free port, a fresh temporary data folder), drives the page at / in headless Chromium with
# Playwright (tests/web/chat.test.mjs), and stops the service again, whatever happens.
#
# Installs what it needs when missing: Debian's chromium (apt-get, as root) and the pinned
# playwright-core (npm ci, from package-lock.json). Never skips: a missing tool is a failure.
#
# Environment:
#   WEB_TEST_PORT        port of the service (default: a free one)
#   WEB_TEST_ARTIFACTS   screenshots and the server log (default: target/web-test-artifacts)
#   WEB_TEST_CHROMIUM    the browser (default: /usr/bin/chromium)
#   WEB_TEST_HEADED=1    show the browser (needs a display)
#   CARGO_TARGET_DIR     where cargo builds (default: target/ in the repository)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
web=$repo/tests/web
cd "$repo"

started=$SECONDS
step() { printf '\n== %s\n' "$*"; }
fail() {
    printf 'web test: %s\n' "$*" >&2
    exit 1
}

artifacts=${WEB_TEST_ARTIFACTS:-$repo/target/web-test-artifacts}
chromium=${WEB_TEST_CHROMIUM:-/usr/bin/chromium}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ $target_dir == /* ]] || target_dir=$repo/$target_dir
binary=$target_dir/debug/message-service

server_pid=
data_dir=
cleanup() {
    local status=$?
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        # A graceful stop takes at most server.shutdown_timeout_secs (10 s); then no mercy.
        for _ in $(seq 1 150); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$server_pid" 2>/dev/null; then
            echo "web test: the service did not stop on SIGTERM; killing it" >&2
            kill -KILL "$server_pid" 2>/dev/null || true
        fi
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ -n $data_dir ]]; then
        rm -rf "$data_dir"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "browser ($chromium)"
if [[ ! -x $chromium ]]; then
    if [[ $chromium != /usr/bin/chromium ]]; then
        fail "WEB_TEST_CHROMIUM=$chromium is not an executable"
    fi
    command -v apt-get >/dev/null 2>&1 ||
        fail "/usr/bin/chromium is missing and there is no apt-get: install Chromium, or set WEB_TEST_CHROMIUM"
    if [[ $(id -u) -eq 0 ]]; then
        apt_get=(apt-get)
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        apt_get=(sudo apt-get)
    else
        fail "/usr/bin/chromium is missing: run 'sudo apt-get install chromium' (root is needed)"
    fi
    echo "installing Debian's chromium with apt-get"
    "${apt_get[@]}" update -q || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -q chromium ||
        fail "apt-get install chromium failed"
    [[ -x $chromium ]] || fail "apt-get installed chromium, but $chromium is still missing"
fi
"$chromium" --version 2>/dev/null || fail "$chromium does not run"

step "playwright-core (npm ci when node_modules is missing or stale)"
command -v node >/dev/null 2>&1 || fail "node is not installed (Node.js 20 or later is needed)"
command -v npm >/dev/null 2>&1 || fail "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || fail "Node.js 20 or later is needed; this is $(node --version)"
# node_modules is current when it was installed from this very lock file by this Node.
stamp=$web/node_modules/.installed-from
wanted="$(sha256sum "$web/package-lock.json" | cut -d' ' -f1) node-$node_major"
if [[ ! -f $stamp || $(cat "$stamp") != "$wanted" ]]; then
    (cd "$web" && npm ci --no-audit --no-fund) || fail "npm ci failed"
    printf '%s\n' "$wanted" >"$stamp"
else
    echo "node_modules is up to date"
fi

step "building message-service (cargo build --locked -p chat-server)"
cargo build --locked -p chat-server
[[ -x $binary ]] || fail "the build produced no $binary"

mkdir -p "$artifacts"
rm -f "$artifacts"/*.png "$artifacts/server.log"

port=${WEB_TEST_PORT:-}
if [[ -z $port ]]; then
    port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
fi
base=http://127.0.0.1:$port
data_dir=$(mktemp -d -t chat-web-test.XXXXXX)

step "starting message-service serve (embedded profile) on $base"
# The service sees only the settings given here: no CHAT* variable of the caller's shell.
server_env=(env)
while IFS= read -r name; do
    server_env+=(-u "$name")
done < <(compgen -e | grep '^CHAT' || true)
"${server_env[@]}" \
    CHAT_PROFILE=embedded \
    CHAT_CONFIG_DIR="$repo/config" \
    CHAT__SERVER__HOST=127.0.0.1 \
    CHAT__SERVER__PORT="$port" \
    CHAT__EMBEDDED__DATA_DIR="$data_dir" \
    RUST_LOG=info \
    "$binary" serve >"$artifacts/server.log" 2>&1 &
server_pid=$!

ready() {
    node -e 'fetch(process.argv[1]).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))' \
        "$base/readyz"
}
deadline=$((SECONDS + 60))
until ready; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        tail -n 30 "$artifacts/server.log" >&2 || true
        fail "the service exited before it was ready (log: $artifacts/server.log)"
    fi
    if ((SECONDS > deadline)); then
        tail -n 30 "$artifacts/server.log" >&2 || true
        fail "the service was not ready within 60 s (log: $artifacts/server.log)"
    fi
    sleep 0.2
done
# Another process on a busy WEB_TEST_PORT could have answered: ours must be the one running.
kill -0 "$server_pid" 2>/dev/null ||
    fail "the service exited (is port $port taken?); log: $artifacts/server.log"
echo "ready"

step "browser test (tests/web/chat.test.mjs)"
WEB_TEST_URL=$base \
    WEB_TEST_ARTIFACTS=$artifacts \
    WEB_TEST_CHROMIUM=$chromium \
    node "$web/chat.test.mjs" || fail "the browser test failed (screenshots and server log: $artifacts)"

echo "web test passed in $((SECONDS - started)) s; screenshots: $artifacts"
