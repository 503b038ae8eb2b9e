"""`python -m cadenza_corpus build --preset tiny [--seed 1] [--jobs N] [--out data/corpus]`."""
from __future__ import annotations

import argparse
import os
import sys

from .select import PRESETS


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="cadenza_corpus", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="render a preset into OUT/PRESET")
    b.add_argument("--preset", choices=PRESETS, default="tiny")
    b.add_argument("--seed", type=int, default=int(os.environ.get("SEED", "1")))
    b.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    b.add_argument("--out", default="data/corpus")
    b.add_argument("--no-distractors", action="store_true",
                   help="leave out the game-music distractors (default and full add them when installed)")
    p = sub.add_parser("plan", help="print what a preset would render, without rendering")
    p.add_argument("--preset", choices=PRESETS, default="tiny")
    p.add_argument("--seed", type=int, default=1)
    r = sub.add_parser("report", help="print a built catalogue's composition as text bar charts")
    r.add_argument("catalogue", help="path to catalogue.jsonl")
    a = ap.parse_args(argv)
    if a.cmd == "report":
        import json
        from .report import markdown, summary
        with open(a.catalogue, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        print(summary(rows, []))
        print()
        print(markdown(rows))
        return 0
    if a.cmd == "build":
        from .build import build
        return build(a.preset, a.seed, max(1, a.jobs), a.out, not a.no_distractors)
    from .select import plan
    units = plan(a.preset, a.seed, log=lambda m: print(m, file=sys.stderr))
    for u in units:
        print(u.collection, u.path, u.number if u.number is not None else "", len(u.excerpts))
    print(f"{sum(len(u.excerpts) for u in units)} clips from {len(units)} units", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
