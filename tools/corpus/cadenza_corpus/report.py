"""Catalogue files (JSONL + CSV, same rows), the printed summary and composition.png."""
from __future__ import annotations

import csv
import json
import re
from collections import Counter

# Column order of catalogue.csv (and the keys of every catalogue.jsonl row).
FIELDS = [
    "track_id", "title", "work_id", "movement", "excerpt", "composer", "era", "ensemble",
    "lead_instrument", "instruments", "midi_programs", "tempo_bpm", "tempo_beat", "tempo_qpm",
    "tempo_pulse", "tempo_band", "tempo_marking", "key", "time_signature", "mean_dynamic",
    "velocity_scale", "level_dbfs",
    "soundfont", "gain_db", "reverb", "reverb_room", "reverb_level", "duration_s", "sample_rate",
    "start_measure", "end_measure", "plays", "repeats", "render_end", "source_file", "collection",
    "licence_note", "audio_path", "split_key", "distractor", "seed",
]
TEMPO_BANDS = ["slow", "moderate", "fast", "very fast"]


def write_catalogue(rows: list[dict], jsonl_path: str, csv_path: str) -> None:
    with open(jsonl_path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({k: r[k] for k in FIELDS}, ensure_ascii=False) + "\n")
    with open(csv_path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: csv_value(r[k]) for k in FIELDS})


def csv_value(v) -> str:
    """How a JSON value is written in the CSV: booleans as true/false, null as empty."""
    if v is None:
        return ""
    return str(v).lower() if isinstance(v, bool) else str(v)


def summary(rows: list[dict], rejects: list[dict]) -> str:
    lines = [f"clips: {len(rows)}  rejected: {len(rejects)}  works: {len({r['work_id'] for r in rows})}  "
             f"composers: {len({r['composer'] for r in rows})}  ensembles: {len({r['ensemble'] for r in rows})}"]
    n_d = sum(1 for r in rows if r["distractor"])
    if n_d:
        lines.append(f"distractors (real recordings, no score metadata): {n_d}")
    for key in ("era", "ensemble", "lead_instrument", "tempo_band", "soundfont", "reverb", "composer"):
        c = Counter(r[key] for r in rows if r[key] is not None)
        lines.append(f"by {key}: " + ", ".join(f"{k} {v}" for k, v in c.most_common()))
    if rejects:
        reasons = Counter(re.sub(r"excerpt \d+", "excerpt k", r["reason"].split(":")[0]) for r in rejects)
        lines.append("rejections: " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()))
    return "\n".join(lines)


def figure(rows: list[dict], path: str, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for ax, key in zip(axes.flat, ("era", "ensemble", "lead_instrument", "tempo_band")):
        c = Counter(r[key] for r in rows if r[key] is not None)
        labels = TEMPO_BANDS if key == "tempo_band" else [k for k, _ in c.most_common()]
        labels = [x for x in labels if c[x]]
        ax.barh(labels[::-1], [c[x] for x in labels][::-1], color="#4c72b0")
        ax.set_title(key.replace("_", " "))
        for i, x in enumerate(labels[::-1]):
            ax.text(c[x], i, f" {c[x]}", va="center", fontsize=8)
        ax.margins(x=0.15)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def markdown(rows: list[dict], width: int = 40) -> str:
    """The composition as text bar charts (for docs/corpus.md)."""
    out = []
    for key in ("era", "ensemble", "lead_instrument", "tempo_band", "composer"):
        c = Counter(r[key] for r in rows if r[key] is not None)
        labels = [x for x in TEMPO_BANDS if c[x]] if key == "tempo_band" else [k for k, _ in c.most_common()]
        top = max(c.values())
        pad = max(len(x) for x in labels)
        out.append(f"{key.replace('_', ' ')}:")
        out += [f"  {x:<{pad}} {'#' * max(1, round(width * c[x] / top)):<{width}} {c[x]}" for x in labels]
        out.append("")
    return "\n".join(out)
