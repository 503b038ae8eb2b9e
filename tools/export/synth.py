"""A short, deterministic piece of music for the parity fixtures, at any sample rate.

Every part is an analytic function of time (sinusoids with envelopes; even the "noise" is a
seeded cluster of sinusoids), so the 16 kHz and 44.1 kHz renderings are the same music, not
two random draws. All partials stay below 7 kHz so nothing aliases at 16 kHz and the
resampler's low-pass leaves them alone. 120 bpm, C major: I-vi-IV-V-I-vi, one bar each,
melody of harmonic tones with vibrato, a pad chord bed, bass, kick and hi-hat.
"""

from __future__ import annotations

import numpy as np

DURATION_S = 12.2  # 195200 samples at 16 kHz -> 763 frames -> 4 patches of 187
BEAT_S = 0.5
MAX_PARTIAL_HZ = 7000.0
SEED = 20240601
# Peak about -4.5 dBFS: loud enough to exercise the front end, far from clipping.
MASTER_GAIN = 1.0

# (MIDI root, chord tones) per 2-second bar.
CHORDS = [(48, [60, 64, 67]), (45, [57, 60, 64]), (41, [57, 60, 65]), (43, [55, 59, 62]),
          (48, [60, 64, 67]), (45, [57, 60, 64]), (48, [60, 64, 67])]
# (MIDI pitch, start beat, length in beats).
MELODY = [
    (76, 0, 1), (79, 1, 1), (77, 2, 0.5), (76, 2.5, 0.5), (74, 3, 1),
    (72, 4, 1.5), (76, 5.5, 0.5), (81, 6, 2),
    (81, 8, 1), (79, 9, 0.5), (77, 9.5, 0.5), (76, 10, 1), (72, 11, 1),
    (74, 12, 1), (71, 13, 1), (79, 14, 2),
    (84, 16, 1), (83, 17, 0.5), (81, 17.5, 0.5), (79, 18, 1), (76, 19, 1),
    (81, 20, 1.5), (79, 21.5, 0.5), (76, 22, 2),
]


def hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def _env(t: np.ndarray, length: float, attack: float, release: float, sustain: float = 1.0,
         decay: float = 0.0) -> np.ndarray:
    """Attack-(decay)-sustain-release envelope over a note of `length` seconds."""
    e = np.clip(t / attack, 0.0, 1.0)
    if decay > 0:
        e = e * (sustain + (1 - sustain) * np.exp(-np.maximum(t - attack, 0) / decay))
    return e * np.clip((length + release - t) / release, 0.0, 1.0)


def _tone(t: np.ndarray, f0: float, n_harm: int, tilt: float, vib_depth: float = 0.0,
          vib_hz: float = 5.5, vib_delay: float = 0.15) -> np.ndarray:
    """Harmonic tone; vibrato (in semitone fraction) fades in after vib_delay seconds."""
    depth = vib_depth * np.clip((t - vib_delay) / 0.2, 0.0, 1.0)
    inst = f0 * (1.0 + depth * np.log(2) / 12 * np.sin(2 * np.pi * vib_hz * t))
    dt = np.diff(t, prepend=t[0]) if t.size else t
    phase = 2 * np.pi * np.cumsum(inst * dt)
    out = np.zeros_like(t)
    for k in range(1, n_harm + 1):
        if k * f0 * (1 + vib_depth * 0.06) > MAX_PARTIAL_HZ:
            break
        out += np.sin(k * phase + 0.3 * k) / k**tilt
    return out


def _place(buf: np.ndarray, sr: int, start_s: float, length_s: float, fn) -> None:
    i0 = int(round(start_s * sr))
    i1 = min(buf.size, int(round((start_s + length_s) * sr)))
    if i1 <= i0:
        return
    t = np.arange(i1 - i0) / sr
    buf[i0:i1] += fn(t)


def render(sr: int) -> tuple[np.ndarray, np.ndarray]:
    """The piece as (left, right) float64 at `sr`; mono is their mean."""
    n = int(round(DURATION_S * sr))
    melody, pad, bass, drums = (np.zeros(n) for _ in range(4))

    for pitch, beat, beats in MELODY:
        length = beats * BEAT_S
        _place(melody, sr, beat * BEAT_S, length + 0.12, lambda t, f=hz(pitch), L=length:
               0.16 * _env(t, L, 0.015, 0.1, sustain=0.7, decay=0.25) * _tone(t, f, 10, 1.0, vib_depth=0.35))

    for bar, (root, tones) in enumerate(CHORDS):
        start = bar * 4 * BEAT_S
        for p in tones:
            _place(pad, sr, start, 2.1, lambda t, f=hz(p): 0.05 * _env(t, 1.95, 0.08, 0.15) * _tone(t, f, 6, 1.6))
        for b in range(4):
            _place(bass, sr, start + b * BEAT_S, 0.5, lambda t, f=hz(root - 12 if root > 45 else root):
                   0.05 * _env(t, 0.42, 0.005, 0.08, sustain=0.4, decay=0.12) * _tone(t, f, 4, 1.2))

    rng = np.random.default_rng(SEED)
    hat_f = rng.uniform(4500, MAX_PARTIAL_HZ, 48)
    hat_p = rng.uniform(0, 2 * np.pi, 48)
    n_beats = int(DURATION_S / BEAT_S)
    for b in range(n_beats):
        if b % 2 == 0:  # kick on beats 1 and 3: a sine swept 120 -> 45 Hz
            _place(drums, sr, b * BEAT_S, 0.35, lambda t: 0.07 * np.exp(-t / 0.09)
                   * np.sin(2 * np.pi * (45 * t + 75 * 0.03 * (1 - np.exp(-t / 0.03)))))
        for half in (0.0, 0.5):  # hi-hat on every eighth
            _place(drums, sr, (b + half) * BEAT_S, 0.08, lambda t: 0.02 * np.exp(-t / 0.018)
                   * np.sin(2 * np.pi * hat_f[:, None] * t + hat_p[:, None]).sum(0) / 7)

    # A quiet bed of "noise": 160 seeded sinusoids between 60 Hz and 7 kHz.
    t = np.arange(n) / sr
    nf = rng.uniform(60, MAX_PARTIAL_HZ, 160)
    nph = rng.uniform(0, 2 * np.pi, 160)
    noise = np.zeros(n)
    for f, ph in zip(nf, nph):
        noise += np.sin(2 * np.pi * f * t + ph)
    noise *= 0.004 / np.sqrt(80)

    # Melody a little left, pad a little right; the mean of L and R is the mono mix.
    left = 1.1 * melody + 0.9 * pad + bass + drums + noise
    right = 0.9 * melody + 1.1 * pad + bass + drums + noise
    fade = np.clip(np.minimum(t, DURATION_S - t) / 0.01, 0, 1)  # 10 ms fades: no clicks at the ends
    return MASTER_GAIN * left * fade, MASTER_GAIN * right * fade
