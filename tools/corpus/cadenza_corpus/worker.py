"""One worker task: parse a unit once, then cut, render and check each of its excerpts.

Every random choice for a clip comes from a generator seeded by (seed, track id), so a clip
renders the same whatever the worker count or the order of tasks."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import tempfile
import traceback
import warnings

from . import render, score
from .collections import FORBIDDING_RIGHTS, GM_NAME
from .select import Unit, collection, split_key

EXCERPT_MUSIC_S = 31.5   # music cut per excerpt; the audio is then trimmed to TARGET_S
TASK_TIMEOUT_S = 900


def van_der_corput(j: int) -> float:
    """0, 1/2, 1/4, 3/4, 1/8, ...: excerpt positions that never depend on how many are asked."""
    x, denom = 0.0, 1.0
    while j:
        denom *= 2
        x += (j % 2) / denom
        j //= 2
    return x


def _timeout(signum, frame):
    raise TimeoutError("task timed out")


def init_worker() -> None:
    warnings.filterwarnings("ignore")
    signal.signal(signal.SIGALRM, _timeout)


def run_unit(args: tuple[Unit, int, str]) -> list[dict]:
    unit, seed, out_dir = args
    results = []
    signal.alarm(TASK_TIMEOUT_S)
    try:
        col = collection(unit.collection)
        over = col.overrides.get(unit.path, {})
        piece = score.prepare(unit.path, unit.number, unit.path in col.multi_movement)
        rights = (piece.rights or "").lower()
        if any(f in rights for f in FORBIDDING_RIGHTS):
            return [_reject(unit, k, tid, f"licence forbids use: {piece.rights!r}") for k, tid in unit.excerpts]
        starts: dict[int, list[float]] = {}
        for k, tid in unit.excerpts:
            try:
                results.append(_excerpt(unit, col, over, piece, k, tid, seed, out_dir, starts))
            except (render.RenderError, ExcerptSkip) as e:
                results.append(_reject(unit, k, tid, str(e)))
            except TimeoutError:
                raise
            except Exception as e:  # a bad score must not stop the build; log it
                results.append(_reject(unit, k, tid, f"error: {e!r} {traceback.format_exc(limit=2)[-300:]}"))
    except TimeoutError:
        done = {r["track_id"] for r in results}
        results += [_reject(unit, k, tid, "task timed out") for k, tid in unit.excerpts if tid not in done]
    except Exception as e:
        results = [_reject(unit, k, tid, f"parse failed: {e!r}") for k, tid in unit.excerpts]
    finally:
        signal.alarm(0)
    for r in results:
        name = r["track_id"] + (".reject.json" if "reason" in r else ".json")
        with open(os.path.join(out_dir, "meta", name), "w") as f:
            json.dump(r, f, ensure_ascii=False)
    return results


def nice_title(piece, unit, col) -> str:
    """The file's title, unless it is missing or just the file name: then one made from the
    work id (bach/bwv26.6 → "BWV 26.6", haydn/opus1no1 + movement 2 → "Op. 1 No. 1, movement 2")."""
    t = (piece.composer if col.title_from_composer else piece.title) or ""
    t = t.strip().split("\n")[0]
    if t and not re.search(r"\.(mxl|xml|krn|abc|musicxml)$", t) and t.lower() not in ("canto",):
        return t
    base = unit.work_id.split("/")[-1].split("#")[0]
    base = re.sub(r"^bwv", "BWV ", base)
    base = re.sub(r"^opus(\d+)no(\d+)", r"Op. \1 No. \2", base)
    base = re.sub(r"^opus(\d+)", r"Op. \1", base)
    base = re.sub(r"^k(\d+)", r"K. \1", base)
    base = base.replace("_", " ")
    mv = unit.movement
    return f"{base}, movement {mv}" if mv.isdigit() else f"{base}, {mv}" if mv else base


def normalise_composer(name: str) -> str:
    """Trecento files append manuscript sigla to names ("Lorenzo F-Pn 568", "Anonymous
    GB-Lbm 29987", "anonymous Venice Fava 4"): keep the person, fold anonymi together."""
    name = re.sub(r"\s+[A-Z]{1,3}-[A-Za-z]+.*$", "", name.strip())
    if name.lower().startswith("anonymous"):
        return "Anonymous"
    return name


class ExcerptSkip(Exception):
    pass


def _reject(unit: Unit, k: int, tid: str, reason: str) -> dict:
    return {"track_id": tid, "source_file": unit.path, "number": unit.number, "excerpt": k,
            "collection": unit.collection, "reason": reason}


def _excerpt(unit, col, over, piece, k, tid, seed, out_dir, starts) -> dict:
    rng = random.Random(f"{seed}|{tid}")
    variants = over.get("variants", col.variants)
    variant = rng.choices(variants, weights=[v.weight for v in variants])[0]
    programs = variant.programs(piece.part_names)
    segs = piece.segments
    first, last, seg_label = segs[k % len(segs)]
    j = k // len(segs)
    marking = score.tempo_marking(piece, first)
    ts = score.time_signature_at(piece, first)
    beat_ql = float(ts.beatDuration.quarterLength)
    lo, hi = score.tempo_range(marking, col.tempo)
    pulse = rng.randint(lo, hi)
    beat_bpm = max(1, round(pulse * score.beat_factor(beat_ql)))
    qpm = beat_bpm * beat_ql
    need_ql = EXCERPT_MUSIC_S * qpm / 60.0
    seg_start, seg_end = piece.measures[first][0], piece.measures[last - 1][1]
    room = seg_end - seg_start - need_ql
    if j > 0:
        if room <= 0:
            raise ExcerptSkip(f"movement too short for excerpt {k}")
        target = seg_start + van_der_corput(j) * room
    else:
        target = seg_start
    m0 = next((i for i in range(first, last) if piece.measures[i][0] >= target - 1e-6), None) if j else first
    if m0 is None:
        raise ExcerptSkip(f"no measure at excerpt {k}'s position")
    start = piece.measures[m0][0]
    if any(abs(start - s) < need_ql for s in starts.get(k % len(segs), [])):
        raise ExcerptSkip(f"excerpt {k} would overlap an earlier one")
    starts.setdefault(k % len(segs), []).append(start)
    m1 = m0 + 1
    while m1 < last and piece.measures[m1 - 1][1] - start < need_ql:
        m1 += 1
    ex = score.excerpt_score(piece, m0, m1, programs, qpm)
    soundfont = rng.choice(sorted(render.SOUNDFONTS))
    gain_db = round(rng.uniform(-6.0, 4.0), 1)
    velocity_scale = round(rng.uniform(0.65, 1.25), 2)
    reverb = None if rng.random() < 0.3 else (round(rng.uniform(0.2, 0.9), 2), round(rng.uniform(0.3, 0.9), 2))
    with tempfile.TemporaryDirectory(prefix="cadenza-corpus-") as tmp:
        mid = os.path.join(tmp, "x.mid")
        mean_vel = score.write_midi(ex, mid, velocity_scale)
        if mean_vel <= 0:
            raise ExcerptSkip("no notes in excerpt")
        stereo, ended = render.fluidsynth(mid, os.path.join(tmp, "x.raw"), soundfont, reverb)
    clip, info = render.finish(stereo, gain_db)
    audio_rel = f"audio/{tid}.flac"
    render.write_flac(os.path.join(out_dir, audio_rel), clip)
    composer = over.get("composer") or col.composer or (piece.composer or "").split("\n")[0].strip() \
        or col.composer_fallback
    composer = normalise_composer(composer)
    title = over.get("title") or nice_title(piece, unit, col)
    movement = seg_label or unit.movement
    beat_name = {1.0: "quarter", 1.5: "dotted quarter", 2.0: "half", 3.0: "dotted half",
                 4.0: "whole", 0.5: "eighth"}.get(beat_ql, f"{beat_ql} quarters")
    band = "slow" if pulse < 76 else "moderate" if pulse < 108 else "fast" if pulse < 140 else "very fast"
    licence = col.licence + (f"; file rights: {piece.rights}" if piece.rights else "")
    return {
        "track_id": tid,
        "title": title,
        "work_id": unit.work_id,
        "movement": movement,
        "excerpt": k,
        "composer": composer,
        "era": over.get("era", col.era),
        "ensemble": variant.ensemble,
        "lead_instrument": variant.lead,
        "instruments": "|".join(GM_NAME.get(p, str(p)) for p in programs),
        "midi_programs": "|".join(str(p) for p in programs),
        "tempo_bpm": beat_bpm,
        "tempo_beat": beat_name,
        "tempo_qpm": round(qpm, 2),
        "tempo_pulse": pulse,
        "tempo_band": band,
        "tempo_marking": marking,
        "key": score.key_name(ex),
        "time_signature": ts.ratioString,
        "mean_dynamic": round(mean_vel, 1),
        "velocity_scale": velocity_scale,
        "level_dbfs": info["level_dbfs"],
        "soundfont": soundfont,
        "gain_db": gain_db,
        "reverb": "off" if reverb is None else "on",
        "reverb_room": 0.0 if reverb is None else reverb[0],
        "reverb_level": 0.0 if reverb is None else reverb[1],
        "duration_s": round(len(clip) / render.SR, 3),
        "sample_rate": render.SR,
        "start_measure": m0 + 1,
        "end_measure": m1,
        "plays": info["loops"],
        "repeats": piece.repeats,
        "render_end": ended,
        "source_file": unit.path + (f"#X:{unit.number}" if unit.number is not None else ""),
        "collection": unit.collection,
        "licence_note": licence,
        "audio_path": audio_rel,
        "split_key": split_key(unit.work_id),
        "distractor": False,
        "seed": seed,
    }
