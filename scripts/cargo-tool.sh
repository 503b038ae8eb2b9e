# Sourced by scripts that need a cargo subcommand from crates.io (audit.sh, fuzz.sh).
# cargo_tool NAME VERSION: install NAME at VERSION into $CACHE/tools once (its build stays in
# $CACHE/tools-target), then set TOOL to its path. Needs CACHE and say().
cargo_tool() {
  TOOL=$CACHE/tools/bin/$1
  if ! "$TOOL" --version 2>/dev/null | grep -q "$2"; then
    say "installing $1 $2 from crates.io into $CACHE/tools (once, a few minutes)"
    CARGO_TARGET_DIR=$CACHE/tools-target cargo install --quiet --locked --root "$CACHE/tools" \
      "$1" --version "$2"
  fi
}
