"""Out-of-domain distractors: 30 s excerpts of real orchestral recordings from Debian's game
music packages (no musical metadata), flagged `distractor: true` in the catalogue.

Score-derived columns (tempo, key, time signature, dynamics, MIDI programs, soundfont) are
null for these rows: nobody wrote those down, and guessing them would poison evaluation."""
from __future__ import annotations

import glob
import json
import os

import numpy as np
import soundfile as sf

from . import render
from .select import split_key, stable_hash

SOURCES = {
    # package: (music directory, licence note)
    "wesnoth-1.16-music": ("/usr/share/games/wesnoth/1.16/data/core/music",
                           "The Battle for Wesnoth soundtrack (Debian wesnoth-1.16-music), GPL-2+; "
                           "see /usr/share/doc/wesnoth-1.16-music/copyright"),
}
QUOTA = {"tiny": 0, "default": 40, "full": 80}
MIN_TRACK_S = 45.0
POSITIONS = (0.2, 0.6, 0.4, 0.8)  # where excerpt k starts, as a fraction of the track


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling of a short segment by FFT truncation / zero-padding."""
    if sr_in == sr_out:
        return x
    n_out = int(round(len(x) * sr_out / sr_in))
    spec = np.fft.rfft(x, axis=0)
    keep = n_out // 2 + 1
    spec = spec[:keep] if keep <= len(spec) else np.pad(spec, ((0, keep - len(spec)), (0, 0)))
    return np.fft.irfft(spec, n=n_out, axis=0) * (n_out / len(x))


def available() -> list[tuple[str, str, str]]:
    """(package, ogg path, licence) for every installed source track long enough to excerpt."""
    out = []
    for pkg, (d, licence) in sorted(SOURCES.items()):
        for p in sorted(glob.glob(os.path.join(d, "*.ogg"))):
            try:
                if sf.info(p).duration >= MIN_TRACK_S:
                    out.append((pkg, p, licence))
            except RuntimeError:
                continue
    return out


def build(preset: str, seed: int, out_dir: str, log) -> tuple[list[dict], list[dict]]:
    quota = QUOTA[preset]
    tracks = available() if quota else []
    if quota and not tracks:
        log("distractors: no game-music package installed (apt-get install wesnoth-1.16-music); none added")
        return [], []
    slots = [(t, k) for k in range(len(POSITIONS)) for t in tracks][:quota]
    rows, rejects = [], []
    for (pkg, path, licence), k in slots:
        stem = os.path.splitext(os.path.basename(path))[0]
        tid = "d" + stable_hash(f"{seed}|{path}|{k}")[:10]
        meta = os.path.join(out_dir, "meta", tid + ".json")
        audio_rel = f"audio/{tid}.flac"
        if os.path.exists(meta) and os.path.exists(os.path.join(out_dir, audio_rel)):
            with open(meta, encoding="utf-8") as f:
                rows.append(json.load(f))
            continue
        rng = np.random.default_rng(int(stable_hash(f"{seed}|{tid}")[:8], 16))
        info = sf.info(path)
        start = int(POSITIONS[k] * info.frames)
        x, sr = sf.read(path, start=start, frames=int(33 * info.samplerate), dtype="float32", always_2d=True)
        x = resample(x.astype(np.float64), sr, render.SR)
        stereo = x if x.shape[1] == 2 else np.repeat(x[:, :1], 2, axis=1)
        gain_db = round(float(rng.uniform(-6.0, 4.0)), 1)
        try:
            clip, fin = render.finish(stereo, gain_db, max_loops=1)
        except render.RenderError as e:
            rejects.append({"track_id": tid, "source_file": path, "number": None, "excerpt": k,
                            "collection": pkg, "reason": str(e)})
            log(f"reject {tid} {path} excerpt {k}: {e}")
            continue
        render.write_flac(os.path.join(out_dir, audio_rel), clip)
        row = {
            "track_id": tid, "title": stem.replace("_", " ").replace("-", " ").title(),
            "work_id": f"wesnoth/{stem}", "movement": "", "excerpt": k,
            "composer": "unknown (Wesnoth soundtrack)", "era": "modern",
            "ensemble": "orchestra (recording)", "lead_instrument": "orchestra",
            "instruments": "recording", "midi_programs": None,
            "tempo_bpm": None, "tempo_beat": None, "tempo_qpm": None, "tempo_pulse": None,
            "tempo_band": None, "tempo_marking": None, "key": None, "time_signature": None,
            "mean_dynamic": None, "velocity_scale": None, "level_dbfs": fin["level_dbfs"],
            "soundfont": None, "gain_db": gain_db, "reverb": None, "reverb_room": None,
            "reverb_level": None, "duration_s": round(len(clip) / render.SR, 3),
            "sample_rate": render.SR, "start_measure": None, "end_measure": None, "plays": 1,
            "repeats": None, "render_end": f"decoded from {start / info.samplerate:.1f} s",
            "source_file": path, "collection": pkg, "licence_note": licence,
            "audio_path": audio_rel, "split_key": split_key(f"wesnoth/{stem}"),
            "distractor": True, "seed": seed,
        }
        with open(meta, "w", encoding="utf-8") as f:
            json.dump(row, f, ensure_ascii=False)
        log(f"ok {tid} {path} distractor")
        rows.append(row)
    return rows, rejects
