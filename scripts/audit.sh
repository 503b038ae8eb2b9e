#!/usr/bin/env bash
# Dependency audit: licences, banned crates and sources of every dependency (deny.toml), and
# RustSec advisories when a copy of the advisory database is at hand.
# Installs cargo-deny from crates.io once, into $CADENZA_CACHE/tools (its build stays there).
#
# The advisory database is a git repository on GitHub, which CI machines of this project
# cannot reach. Where a checkout of it can be brought over (github.com/rustsec/advisory-db),
# ADVISORY_DB=/path/to/it checks every crate in Cargo.lock against it, offline; without it
# the advisory check is skipped with a line saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${CADENZA_CACHE:-$HOME/.cache/cadenza}
say() { printf '\033[1;34m[audit]\033[0m %s\n' "$*" >&2; }
source scripts/cargo-tool.sh
cargo_tool cargo-deny 0.20.2
BIN=$TOOL
say "cargo deny check bans licenses sources"
"$BIN" --log-level warn check bans licenses sources
if [[ -z "${ADVISORY_DB:-}" ]]; then
  say "advisories: skipped (set ADVISORY_DB to a checkout of github.com/rustsec/advisory-db)"
  exit 0
fi
[[ -d "$ADVISORY_DB/crates" ]] ||
  { echo "ADVISORY_DB=$ADVISORY_DB is not a checkout of rustsec/advisory-db (no crates/)" >&2; exit 2; }
db=$(cd "$ADVISORY_DB" && pwd)
stamp=$(git -C "$db" log -1 --format='%cs %h' 2>/dev/null || echo "unknown date")
# Offline, cargo-deny opens the default database (github.com/rustsec/advisory-db) from a
# directory under db-path whose name it derives from the URL: ask it which (a first run that
# finds nothing there), and put the checkout there. Its 90-day staleness limit is lifted: the
# line above prints how old the copy is.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s|^\[advisories\]\$|[advisories]\ndb-path = \"$work/dbs\"\nmaximum-db-staleness = \"P3650D\"|" \
  deny.toml >"$work/deny.toml"
grep -q '^db-path' "$work/deny.toml" || { echo "deny.toml has no [advisories] table" >&2; exit 2; }
mkdir -p "$work/dbs"
deny=("$BIN" --offline --config "$work/deny.toml")
where=$("${deny[@]}" --log-level debug check advisories 2>&1 |
  sed -n "s/.*Opening advisory database at '\(.*\)'.*/\1/p" | head -n1 || true)
[[ -n "$where" ]] || { echo "cargo-deny did not say where it looks for the advisory database" >&2; exit 2; }
ln -s "$db" "$where"
say "cargo deny check advisories against $db ($stamp)"
"${deny[@]}" --log-level warn check advisories
