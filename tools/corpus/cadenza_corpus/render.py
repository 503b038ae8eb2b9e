"""FluidSynth side: MIDI → capped raw render → mono, levelled, trimmed FLAC.

FluidSynth's file renderer sometimes never stops, so every render runs under a wall-clock
timeout *and* a cap on the bytes it may write; whichever trips first kills it, and the
samples written so far are used. Raw float output (no header) keeps a killed render readable.
"""
from __future__ import annotations

import os
import subprocess
import time

import numpy as np
import soundfile as sf

SR = 22050
TARGET_S = 30.0
RMS_FLOOR_DBFS = -45.0     # quieter than this over the clip: rejected as near-silent
AUDIBLE_DBFS = -55.0       # a 50 ms frame above this counts as sounding
REF_RMS_DBFS = -20.0       # clips are levelled to this before the gain jitter
RENDER_TIMEOUT_S = 120.0
MAX_RENDER_S = 75.0        # cap on rendered audio length (bytes written)

SOUNDFONTS = {
    "FluidR3_GM": ("/usr/share/sounds/sf2/FluidR3_GM.sf2",),
    "MuseScore_General": ("/usr/share/sounds/sf3/MuseScore_General.sf3",
                          "/usr/share/sounds/sf3/MuseScore_General_Full.sf3"),
}


class RenderError(Exception):
    pass


def soundfont_path(name: str) -> str:
    for p in SOUNDFONTS[name]:
        if os.path.exists(p):
            return p
    raise RenderError(f"soundfont {name} not found (looked in {SOUNDFONTS[name]})")


def fluidsynth(midi_path: str, raw_path: str, soundfont: str, reverb: tuple[float, float] | None,
               timeout_s: float = RENDER_TIMEOUT_S, max_s: float = MAX_RENDER_S) -> tuple[np.ndarray, str]:
    """Render to stereo float32 at SR; returns (samples [n, 2], how it ended)."""
    cmd = ["fluidsynth", "-n", "-i", "-q", "-F", raw_path, "-T", "raw", "-O", "float",
           "-r", str(SR), "-g", "0.4", "-C", "0",
           "-o", "synth.dynamic-sample-loading=1", "-o", "synth.cpu-cores=1"]
    if reverb is None:
        cmd += ["-R", "0"]
    else:
        room, level = reverb
        cmd += ["-R", "1", "-o", f"synth.reverb.room-size={room:.2f}",
                "-o", f"synth.reverb.level={level:.2f}", "-o", "synth.reverb.damp=0.3"]
    cmd += [soundfont_path(soundfont), midi_path]
    max_bytes = int(max_s * SR) * 2 * 4
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ended = "finished"
    try:
        while proc.poll() is None:
            time.sleep(0.05)
            size = os.path.getsize(raw_path) if os.path.exists(raw_path) else 0
            if size > max_bytes:
                ended = "capped (length)"
                break
            if time.monotonic() - t0 > timeout_s:
                ended = "capped (timeout)"
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if ended == "finished" and proc.returncode != 0:
        raise RenderError(f"fluidsynth exited {proc.returncode}: {err.strip()[:300]}")
    if not os.path.exists(raw_path):
        raise RenderError("fluidsynth wrote nothing")
    data = np.fromfile(raw_path, dtype="<f4")
    os.unlink(raw_path)
    data = data[: (len(data) // 2) * 2][: max_bytes // 4]
    return data.reshape(-1, 2), ended


def frame_db(x: np.ndarray, frame: int = SR // 20) -> np.ndarray:
    n = len(x) // frame
    if n == 0:
        return np.array([-120.0])
    f = x[: n * frame].reshape(n, frame)
    return 10 * np.log10(np.mean(f * f, axis=1) + 1e-12)


def audible_span(x: np.ndarray) -> tuple[int, int]:
    """(first, last+1) sample of the sounding part, at 50 ms resolution."""
    frame = SR // 20
    loud = np.nonzero(frame_db(x, frame) > AUDIBLE_DBFS)[0]
    if len(loud) == 0:
        return 0, 0
    return int(loud[0] * frame), int((loud[-1] + 1) * frame)


def finish(stereo: np.ndarray, gain_db: float, target_s: float = TARGET_S,
           max_loops: int = 4) -> tuple[np.ndarray, dict]:
    """Mono mix, trim leading silence, loop short pieces (played again, as a folk musician
    would), cut to exactly target_s with a short fade, level to REF_RMS_DBFS + gain_db,
    keep the peak under -1 dBFS. Raises RenderError with the reason for rejecting."""
    mono = stereo.mean(axis=1).astype(np.float64)
    a, b = audible_span(mono)
    if b - a <= 0:
        raise RenderError("silent render")
    body = mono[a:b]
    need = int(target_s * SR)
    loops = 1
    if len(body) < need:
        if len(body) < 6 * SR:
            raise RenderError(f"too short: {len(body) / SR:.1f} s of sound")
        gap = np.zeros(int(0.4 * SR))
        played = body
        while len(played) < need and loops < max_loops:
            played = np.concatenate([played, gap, body])
            loops += 1
        if len(played) < need:
            raise RenderError(f"too short: {len(played) / SR:.1f} s after {loops} plays")
        body = played
    else:
        tail = mono[b:]  # keep the natural release after the last note if the cut falls there
        body = np.concatenate([body, tail])
    clip = body[:need].copy()
    fade = int(0.5 * SR)
    clip[-fade:] *= np.linspace(1.0, 0.0, fade)
    rms_db = 10 * np.log10(np.mean(clip * clip) + 1e-20)
    if rms_db < -80:
        raise RenderError(f"near-silent: {rms_db:.1f} dBFS before levelling")
    # Sounding time inside the clip: a clip that is mostly silence is rejected, whatever its RMS.
    sounding = float(np.mean(frame_db(clip) > rms_db - 30))
    target_db = REF_RMS_DBFS + gain_db
    clip *= 10 ** ((target_db - rms_db) / 20)
    peak = float(np.max(np.abs(clip)))
    limit = 10 ** (-1 / 20)
    if peak > limit:
        clip *= limit / peak
    level = 10 * np.log10(np.mean(clip * clip) + 1e-20)
    if level < RMS_FLOOR_DBFS:
        raise RenderError(f"near-silent: {level:.1f} dBFS")
    if sounding < 0.5:
        raise RenderError(f"mostly silent: sound in {sounding:.0%} of the clip")
    return clip.astype(np.float32), {"loops": loops, "level_dbfs": round(level, 2)}


def write_flac(path: str, clip: np.ndarray) -> None:
    tmp = path + ".part"
    sf.write(tmp, clip, SR, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)
