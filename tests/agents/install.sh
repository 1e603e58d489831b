#!/usr/bin/env bash
# Installs the real coding-agent programs the preset tests drive, pinned, into a cache outside
# the repository: ~/.cache/autoresearch-agents/<versions>/{npm,aider}. Idempotent: a stamp file
# marks a finished install, so a second run returns at once. Prints the bin directory.
set -euo pipefail

CLAUDE=2.1.197
CODEX=0.171.0
GEMINI=0.61.0
OPENCODE=1.18.33
AIDER=0.86.2

base="${AUTORESEARCH_AGENTS_CACHE:-$HOME/.cache/autoresearch-agents}"
dir="$base/claude-$CLAUDE.codex-$CODEX.gemini-$GEMINI.opencode-$OPENCODE.aider-$AIDER"
stamp="$dir/.installed"
if [ -f "$stamp" ]; then
  echo "$dir/bin"
  exit 0
fi
mkdir -p "$dir/npm" "$dir/bin"
log="$dir/install.log"
{
  # The npm packages ship their native binaries as optional platform packages.
  npm install --prefix "$dir/npm" --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$CLAUDE" "@openai/codex@$CODEX" \
    "@google/gemini-cli@$GEMINI" "opencode-ai@$OPENCODE"
  # aider in its own environment: its pinned dependencies must not meet ours.
  python3 -m venv "$dir/aider"
  "$dir/aider/bin/python" -m pip install --quiet --disable-pip-version-check "aider-chat==$AIDER"
} >"$log" 2>&1 || { echo "agent install failed; see $log" >&2; tail -20 "$log" >&2; exit 1; }
for program in claude codex gemini opencode; do
  ln -sf "$dir/npm/node_modules/.bin/$program" "$dir/bin/$program"
done
ln -sf "$dir/aider/bin/aider" "$dir/bin/aider"
touch "$stamp"
echo "$dir/bin"
