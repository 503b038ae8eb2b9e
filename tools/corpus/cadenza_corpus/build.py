"""Build a preset: plan, render what is missing in parallel, write the catalogue and report."""
from __future__ import annotations

import glob
import json
import multiprocessing as mp
import os
import shutil
import sys
import time

from tqdm import tqdm

from . import distractors, report
from .select import plan
from .worker import init_worker, normalise_composer, run_unit


class Log:
    def __init__(self, path: str):
        self.f = open(path, "a", encoding="utf-8")

    def __call__(self, msg: str) -> None:
        self.f.write(time.strftime("%Y-%m-%dT%H:%M:%S ") + msg + "\n")
        self.f.flush()


def check_tools() -> None:
    if shutil.which("fluidsynth") is None:
        sys.exit("fluidsynth not found: run `make corpus` (it installs it) or apt-get install fluidsynth")
    from .render import SOUNDFONTS, soundfont_path
    for name in SOUNDFONTS:
        soundfont_path(name)


def _done(out_dir: str, tid: str, seed: int) -> dict | None:
    """A clip already rendered (or already rejected) for this seed, or None."""
    for suffix in (".json", ".reject.json"):
        p = os.path.join(out_dir, "meta", tid + suffix)
        if os.path.exists(p):
            try:
                with open(p, encoding="utf-8") as f:
                    r = json.load(f)
            except (OSError, ValueError):
                return None
            if "reason" in r:
                return r
            audio = os.path.join(out_dir, r["audio_path"])
            if r.get("seed") == seed and os.path.exists(audio) and os.path.getsize(audio) > 1000:
                return r
    return None


def build(preset: str, seed: int, jobs: int, out_root: str, with_distractors: bool = True) -> int:
    t0 = time.monotonic()
    check_tools()
    out_dir = os.path.join(out_root, preset)
    os.makedirs(os.path.join(out_dir, "audio"), exist_ok=True)
    os.makedirs(os.path.join(out_dir, "meta"), exist_ok=True)
    log = Log(os.path.join(out_dir, "build.log"))
    log(f"build preset={preset} seed={seed} jobs={jobs}")
    units = plan(preset, seed, log)
    wanted = [tid for u in units for _, tid in u.excerpts]
    todo = []
    for u in units:
        missing = [(k, tid) for k, tid in u.excerpts if _done(out_dir, tid, seed) is None]
        if missing:
            u2 = type(u)(**{**u.__dict__, "excerpts": missing})
            todo.append(u2)
    n_todo = sum(len(u.excerpts) for u in todo)
    print(f"corpus {preset}: {len(wanted)} clips planned from {len(units)} units, "
          f"{len(wanted) - n_todo} already done, {n_todo} to render with {jobs} processes", flush=True)
    todo.sort(key=lambda u: -u.size * len(u.excerpts))  # big parses first: better packing
    args = [(u, seed, out_dir) for u in todo]
    with tqdm(total=n_todo, unit="clip", file=sys.stderr, mininterval=2.0) as bar:
        if jobs <= 1:
            init_worker()
            results = map(run_unit, args)
            pool = None
        else:
            pool = mp.get_context("fork").Pool(jobs, initializer=init_worker, maxtasksperchild=40)
            results = pool.imap_unordered(run_unit, args)
        for res in results:
            for r in res:
                if "reason" in r:
                    log(f"reject {r['track_id']} {r['source_file']}#{r['number']} excerpt {r['excerpt']}: {r['reason']}")
                else:
                    log(f"ok {r['track_id']} {r['source_file']} {r['ensemble']} {r['tempo_bpm']}bpm {r['soundfont']}")
            bar.update(len(res))
        if pool is not None:
            pool.close()
            pool.join()
    rows, rejects = [], []
    for tid in wanted:
        r = _done(out_dir, tid, seed)
        if r is None:
            continue
        if "reason" in r:
            rejects.append(r)
        else:
            r["composer"] = normalise_composer(r["composer"])
            rows.append(r)
    if with_distractors:
        d_rows, d_rejects = distractors.build(preset, seed, out_dir, log)
        rows += d_rows
        rejects += d_rejects
    # Stale files from other seeds or older plans are not part of this catalogue.
    keep = {r["track_id"] for r in rows}
    for p in glob.glob(os.path.join(out_dir, "audio", "*.flac")):
        if os.path.basename(p)[:-5] not in keep:
            os.unlink(p)
    report.write_catalogue(rows, os.path.join(out_dir, "catalogue.jsonl"), os.path.join(out_dir, "catalogue.csv"))
    with open(os.path.join(out_dir, "rejects.jsonl"), "w", encoding="utf-8") as f:
        for r in rejects:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    text = report.summary(rows, rejects)
    elapsed = time.monotonic() - t0
    text += f"\nbuild time: {elapsed:.0f} s ({n_todo} rendered this run, {jobs} processes)"
    with open(os.path.join(out_dir, "summary.txt"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    report.figure(rows, os.path.join(out_dir, "composition.png"),
                  f"cadenza corpus '{preset}' (seed {seed}): {len(rows)} clips")
    log(text.replace("\n", " | "))
    print(text)
    print(f"wrote {out_dir}/catalogue.jsonl, catalogue.csv, composition.png, build.log")
    return 0 if rows else 1
