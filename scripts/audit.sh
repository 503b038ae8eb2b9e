#!/usr/bin/env bash
# Dependency audit: licences, banned crates and sources of every dependency (deny.toml).
# Installs cargo-deny from crates.io once, into $CADENZA_CACHE/tools (its build stays there).
# Advisories need the RustSec database from GitHub, which CI cannot reach: see deny.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${CADENZA_CACHE:-$HOME/.cache/cadenza}
VERSION=0.20.2
BIN=$CACHE/tools/bin/cargo-deny
say() { printf '\033[1;34m[audit]\033[0m %s\n' "$*" >&2; }
if ! "$BIN" --version 2>/dev/null | grep -q "$VERSION"; then
  say "installing cargo-deny $VERSION from crates.io into $CACHE/tools (once, a few minutes)"
  CARGO_TARGET_DIR=$CACHE/tools-target cargo install --quiet --locked --root "$CACHE/tools" \
    cargo-deny --version "$VERSION"
fi
say "cargo deny check bans licenses sources"
exec "$BIN" --log-level warn check bans licenses sources
