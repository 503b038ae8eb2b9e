#!/usr/bin/env bash
# Dependency audit: licences, banned crates and sources of every dependency (deny.toml).
# Installs cargo-deny from crates.io once, into $CADENZA_CACHE/tools (its build stays there).
# Advisories need the RustSec database from GitHub, which CI cannot reach: see deny.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${CADENZA_CACHE:-$HOME/.cache/cadenza}
say() { printf '\033[1;34m[audit]\033[0m %s\n' "$*" >&2; }
source scripts/cargo-tool.sh
cargo_tool cargo-deny 0.20.2
BIN=$TOOL
say "cargo deny check bans licenses sources"
exec "$BIN" --log-level warn check bans licenses sources
