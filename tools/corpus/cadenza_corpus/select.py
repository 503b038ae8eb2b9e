"""Choose what to render for a preset: enumerate the corpus files of every collection,
drop skipped and twin encodings, and hand out excerpt slots up to each collection's quota.
Deterministic for a seed: everything is sorted before the seeded shuffle."""
from __future__ import annotations

import glob
import hashlib
import os
import random
import re
from dataclasses import dataclass, field

from .collections import COLLECTIONS, SKIP_FILES, SKIP_PREFIXES, Collection

FORMAT_RANK = {".mxl": 0, ".musicxml": 1, ".xml": 1, ".krn": 2, ".abc": 3}
PRESETS = ("tiny", "default", "full")


def corpus_root() -> str:
    import music21
    return os.path.join(os.path.dirname(music21.__file__), "corpus")


@dataclass
class Unit:
    """One task for a worker: a file (or one tune of an ABC collection) and its excerpts."""
    collection: str
    path: str                 # music21 corpus path, e.g. "bach/bwv66.6.mxl"
    number: int | None        # ABC tune number (X:) inside an opus file
    work_id: str
    movement: str
    size: int
    excerpts: list[tuple[int, str]] = field(default_factory=list)  # (excerpt index, track id)


def stable_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def track_id(seed: int, path: str, number: int | None, k: int) -> str:
    return "c" + stable_hash(f"{seed}|{path}|{number}|{k}")[:10]


def split_key(work_id: str, folds: int = 10) -> int:
    """Work-level fold: every excerpt of a work lands in the same fold."""
    return int(stable_hash(work_id)[:8], 16) % folds


def work_and_movement(path: str) -> tuple[str, str]:
    stem, _ = os.path.splitext(path)
    d, base = os.path.split(stem)
    if path.startswith("palestrina/"):
        m = re.match(r"^(?P<mvt>.+?)_(?P<n>\d+)$", base)
        return (f"palestrina/mass_{m['n']}", m["mvt"]) if m else (stem, "")
    m = re.match(r"^movement(\d+)", base)
    if m:
        return d, m.group(1)
    if path.startswith("corelli/"):
        return d, base
    return stem, ""


def abc_numbers(full_path: str) -> list[int]:
    with open(full_path, encoding="latin-1") as f:
        return [int(m.group(1)) for m in re.finditer(r"^X:\s*(\d+)", f.read(), re.M)]


def enumerate_files(col: Collection, root: str, log) -> list[str]:
    files = set()
    for g in col.globs:
        for p in glob.glob(os.path.join(root, g)):
            files.add(os.path.relpath(p, root).replace(os.sep, "/"))
    best: dict[str, str] = {}
    for rel in sorted(files):
        if rel.startswith(SKIP_PREFIXES):
            log(f"skip {rel}: excluded directory (licence or not music)")
            continue
        if rel in SKIP_FILES:
            log(f"skip {rel}: {SKIP_FILES[rel]}")
            continue
        if any(x in rel for x in col.exclude):
            continue
        stem, ext = os.path.splitext(rel)
        if ext not in FORMAT_RANK:
            continue
        other = best.get(stem)
        if other is None or FORMAT_RANK[ext] < FORMAT_RANK[os.path.splitext(other)[1]]:
            if other is not None:
                log(f"skip {other}: twin of {rel}")
            best[stem] = rel
        else:
            log(f"skip {rel}: twin of {other}")
    return sorted(best.values())


def plan(preset: str, seed: int, log=lambda msg: None) -> list[Unit]:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; use one of {PRESETS}")
    root = corpus_root()
    units: list[Unit] = []
    for col in COLLECTIONS:
        rng = random.Random(f"{seed}|{preset}|{col.name}")
        files = enumerate_files(col, root, log)
        if preset == "tiny":
            files = [f for f in files if f in col.tiny_files]
        candidates: list[Unit] = []
        for rel in files:
            size = os.path.getsize(os.path.join(root, rel))
            work, mvt = work_and_movement(rel)
            if col.opus:
                numbers = abc_numbers(os.path.join(root, rel))
                if preset == "tiny":
                    numbers = numbers[:12]
                for n in numbers:
                    candidates.append(Unit(col.name, rel, n, f"{work}#{n}", "", size // max(1, len(numbers))))
            else:
                candidates.append(Unit(col.name, rel, None, work, mvt, size))
        rng.shuffle(candidates)
        quota = col.quota[preset]
        per_unit = {}
        for u in candidates:
            over = col.overrides.get(u.path, {})
            cap = over.get("max_excerpts", col.max_excerpts)
            if u.path in col.multi_movement:
                cap *= 4
            per_unit[id(u)] = cap
        taken = 0
        k = 0
        chosen: dict[int, Unit] = {}
        while taken < quota and k < max(per_unit.values(), default=0):
            for u in candidates:
                if taken >= quota:
                    break
                if k < per_unit[id(u)]:
                    u.excerpts.append((k, track_id(seed, u.path, u.number, k)))
                    chosen[id(u)] = u
                    taken += 1
            k += 1
        units.extend(u for u in candidates if id(u) in chosen)
        log(f"plan {col.name}: {taken} excerpts from {len(chosen)} of {len(candidates)} units")
    return units


def collection(name: str) -> Collection:
    for c in COLLECTIONS:
        if c.name == name:
            return c
    raise KeyError(name)
