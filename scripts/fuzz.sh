#!/usr/bin/env bash
# Coverage-guided fuzzing: the cargo-fuzz targets in fuzz/ (libFuzzer + AddressSanitizer),
# each for $FUZZ_SECS seconds, starting from the seeds of crates/cadenza/examples/fuzz.rs
# (the parity fixtures, valid events) plus whatever earlier runs added to the corpus.
#
#   scripts/fuzz.sh [TARGET...]     default: audio_front_end event_payloads
#
# cargo-fuzz is installed from crates.io once, into $CADENZA_CACHE/tools. It hands rustc
# nightly-only flags (-Zsanitizer=address); the stable toolchain, the only one this project
# can install, accepts them with RUSTC_BOOTSTRAP=1, set here for the fuzz build alone (the
# product is never built with it). Instrumented builds go to $CADENZA_CACHE/fuzz-target.
# A failing input is written to $CADENZA_CACHE/fuzz-artifacts/<target>/ and the run fails;
# reproduce it with `cargo fuzz run <target> <file>` (same environment), then make it a
# regression test (crates/cadenza-audio/tests/audio/fuzz_regressions.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${CADENZA_CACHE:-$HOME/.cache/cadenza}
SECS=${FUZZ_SECS:-60}
say() { printf '\033[1;34m[fuzz]\033[0m %s\n' "$*" >&2; }
source scripts/cargo-tool.sh
cargo_tool cargo-fuzz 0.13.2
BIN=$TOOL
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(audio_front_end event_payloads)
for t in "${targets[@]}"; do
  case "$t" in
    # Inputs of at most 64 KiB (seeds are cut there): most of a file's structure is in its
    # first bytes, and a whole 12 s clip per run would leave ~10 runs a second under ASan.
    audio_front_end) kind=audio max_len=65536 ;;
    event_payloads) kind=events max_len=4096 ;;
    *) echo "unknown fuzz target $t (audio_front_end, event_payloads)" >&2; exit 2 ;;
  esac
  corpus=$CACHE/fuzz-corpus/$t
  artifacts=$CACHE/fuzz-artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target} \
    cargo run -q -p cadenza --example fuzz -- --target "$kind" --write-seeds "$corpus"
  say "$t for $SECS s (corpus $corpus)"
  # -timeout: one input over 10 s is a hang; -rss_limit_mb: over 2 GiB is a memory bomb.
  RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$CACHE/fuzz-target "$BIN" run --fuzz-dir fuzz "$t" "$corpus" -- \
    -max_total_time="$SECS" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$artifacts/" \
    -print_final_stats=1
done
