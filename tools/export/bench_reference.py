#!/usr/bin/env python3
"""Time the original Python musicnn extractor on audio files: the speed reference for Rust.

Runs in the TF environment (`make bench-reference FILES="a.mp3 b.wav"`; the Rust benchmark
`crates/cadenza-model/benches/embed.rs` calls it as `<venv-tf python> bench_reference.py FILES`).
Calls the stock `musicnn.extractor.extractor(path, model, extract_features=True)`, which
decodes + resamples with librosa, computes the log-mel, rebuilds and restores the TF graph
on every call and runs the patches (its features bug is irrelevant to timing). Measures the
cold first call (after imports), then every file again warm. Prints one JSON line on stdout:
{"files", "audio_seconds", "cold_s", "warm_total_s", "x_realtime_warm", ...}; the extractor's
own chatter goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def duration_s(path: str) -> float:
    try:
        import soundfile as sf

        return float(sf.info(path).duration)
    except Exception:  # containers libsndfile cannot read: let librosa/audioread measure
        import librosa

        return float(librosa.get_duration(path=path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--model", default="MTT_musicnn")
    args = ap.parse_args()
    missing = [f for f in args.files if not os.path.isfile(f)]
    if missing:
        sys.exit(f"not files: {missing}")

    t_import = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        from musicnn.extractor import extractor
    import_s = time.perf_counter() - t_import

    def call(path: str) -> None:
        with contextlib.redirect_stdout(sys.stderr):
            extractor(path, model=args.model, extract_features=True)

    t0 = time.perf_counter()
    call(args.files[0])
    cold_s = time.perf_counter() - t0

    per_file = []
    for f in args.files:
        t = time.perf_counter()
        call(f)
        per_file.append(time.perf_counter() - t)
    warm_total_s = sum(per_file)
    audio_seconds = sum(duration_s(f) for f in args.files)
    print(json.dumps({
        "files": len(args.files),
        "audio_seconds": round(audio_seconds, 3),
        "cold_s": round(cold_s, 4),
        "warm_total_s": round(warm_total_s, 4),
        "x_realtime_warm": round(audio_seconds / warm_total_s, 3),
        "warm_per_file_s": round(warm_total_s / len(args.files), 4),
        "import_s": round(import_s, 3),
        "model": args.model,
        "threads": "TensorFlow defaults",
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
