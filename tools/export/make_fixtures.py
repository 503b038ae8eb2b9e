#!/usr/bin/env python3
"""Write tests/fixtures/parity: a synthetic clip in several containers + TF reference outputs.

Runs in the TF environment (`make parity-fixtures`). The clip (synth.py) is written as
16 kHz mono 16-bit WAV and, rendered again at 44.1 kHz stereo, as FLAC, Ogg Vorbis and MP3.
Every reference number comes from the musicnn front end with reflect padding and the
TensorFlow graph (not ONNX), all patches of a clip in ONE batch (the stock extractor runs
only the first patch through the features graph and repeats its `penultimate`):

    y, _ = librosa.load(path, sr=16000)            # mono mean; soxr_hq resampling for 44.1k
    S = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=256, n_mels=96,
                                       pad_mode="reflect").T
    logmel = np.log10(10000 * S.astype(np.float16) + 1)    # float16 mel, then float32 (numpy<2)
    patches = logmel[: P * 187].reshape(P, 187, 96)        # P = (F - 187) // 187 + 1

Files: `<clip>.logmel.f32` [F,96] and `<clip>.<model>.{penultimate,taggram}.f32` [P,D], raw
little-endian float32, row-major; `manifest.json` describes them (see tools/export/README.md).
"""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

import synth  # noqa: E402
from musicnn_graph import N_MELS, PATCH_FRAMES, build_session, labels_for  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests/fixtures/parity"
MODELS = ["MTT_musicnn", "MSD_musicnn"]
MAX_FIXTURE_BYTES = 1_500_000


# ---------------------------------------------------------------- audio files


def _ogg_crc(data: bytes) -> int:
    table = _ogg_crc.table
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) & 0xFF) ^ b]
    return crc


def _crc_table() -> list[int]:
    out = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        out.append(r & 0xFFFFFFFF)
    return out


_ogg_crc.table = _crc_table()


def fix_ogg_serial(path: Path, serial: int = 0x43414445) -> None:
    """libsndfile picks a random Ogg stream serial; set a fixed one so reruns are identical."""
    data = bytearray(path.read_bytes())
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS":
            raise ValueError(f"{path}: no Ogg page at byte {pos}")
        n_seg = data[pos + 26]
        body = sum(data[pos + 27 : pos + 27 + n_seg])
        end = pos + 27 + n_seg + body
        data[pos + 14 : pos + 18] = struct.pack("<I", serial)
        data[pos + 22 : pos + 26] = b"\0\0\0\0"
        data[pos + 22 : pos + 26] = struct.pack("<I", _ogg_crc(bytes(data[pos:end])))
        pos = end
    path.write_bytes(bytes(data))


def write_audio() -> list[dict]:
    import soundfile as sf

    left, right = synth.render(16000)
    mono = ((left + right) / 2).astype(np.float32)
    sf.write(OUT / "clip16k_mono.wav", mono, 16000, subtype="PCM_16")
    clips = [{"audio": "clip16k_mono.wav", "sample_rate": 16000, "channels": 1}]

    left, right = synth.render(44100)
    stereo = np.stack([left, right], axis=1).astype(np.float32)
    for ext, fmt, subtype in [("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"), ("mp3", "MP3", "MPEG_LAYER_III")]:
        path = OUT / f"clip44k_stereo.{ext}"
        sf.write(path, stereo, 44100, format=fmt, subtype=subtype)
        if ext == "ogg":
            fix_ogg_serial(path)
        clips.append({"audio": path.name, "sample_rate": 44100, "channels": 2})
    for c in clips:
        size = (OUT / c["audio"]).stat().st_size
        if size > MAX_FIXTURE_BYTES:
            sys.exit(f"{c['audio']} is {size} bytes, over the {MAX_FIXTURE_BYTES} budget")
    return clips


# ---------------------------------------------------------------- reference front end


def reference_logmel(path: Path) -> np.ndarray:
    """musicnn's batch_data front end, with reflect padding.

    Only the mel power is rounded to float16. With numpy < 2 (musicnn's era, and our pin)
    `10000 * float16_array` is float32: the Python int 10000 counts as int16 under value-based
    casting and int16 with float16 promotes to float32. So the scaling, the +1 and the log10
    run in float32. (numpy >= 2 would keep float16 throughout; that is NOT the reference.)
    """
    import librosa

    y, sr = librosa.load(str(path), sr=16000)
    S = librosa.feature.melspectrogram(
        y=y, sr=sr, hop_length=256, n_fft=512, n_mels=N_MELS, pad_mode="reflect"
    ).T
    logmel = np.log10(10000 * S.astype(np.float16) + 1)  # musicnn.extractor.batch_data
    explicit = np.log10(np.float32(10000) * S.astype(np.float16).astype(np.float32) + np.float32(1))
    if logmel.dtype != np.float32 or not np.array_equal(logmel, explicit):
        sys.exit(f"numpy {np.__version__} does not promote float16 * int to float32; run with numpy<2")
    if not np.isfinite(logmel).all():
        sys.exit(f"{path.name}: the log-mel is not finite (mel power beyond float16's range)")
    return logmel.astype(np.float32)


def patches(logmel: np.ndarray) -> np.ndarray:
    starts = range(0, logmel.shape[0] - PATCH_FRAMES + 1, PATCH_FRAMES)
    return np.stack([logmel[s : s + PATCH_FRAMES] for s in starts])


def save_f32(name: str, a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a, dtype="<f4")
    (OUT / name).write_bytes(a.tobytes())
    return {"file": name, "shape": list(a.shape)}


def floats(a: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(a, dtype=np.float32)]


def main() -> None:
    import librosa
    import soundfile as sf
    import tensorflow as tf

    OUT.mkdir(parents=True, exist_ok=True)
    clips = write_audio()
    sessions = {m: build_session(m) for m in MODELS}

    def run(model: str, batch: np.ndarray) -> dict[str, np.ndarray]:
        sess, x, outs = sessions[model]
        names = ["taggram", "penultimate"]
        got = sess.run([outs[n] for n in names], feed_dict={x: batch})  # all patches, one batch
        return dict(zip(names, got))

    pooled16 = {}
    for clip in clips:
        path = OUT / clip["audio"]
        stem = path.name.replace(".", "_") if clip["sample_rate"] != 16000 else path.stem
        logmel = reference_logmel(path)
        batch = patches(logmel)
        clip["n_frames"], clip["n_patches"] = int(logmel.shape[0]), int(batch.shape[0])
        if clip["sample_rate"] == 16000:
            clip["logmel"] = save_f32(f"{stem}.logmel.f32", logmel)
        clip["models"] = {}
        for model in MODELS:
            out = run(model, batch)
            entry = {}
            if clip["sample_rate"] == 16000:
                entry["penultimate"] = save_f32(f"{stem}.{model}.penultimate.f32", out["penultimate"])
                entry["taggram"] = save_f32(f"{stem}.{model}.taggram.f32", out["taggram"])
                pooled16[model] = out["penultimate"].mean(0)
            entry["pooled_penultimate"] = floats(out["penultimate"].mean(0))
            clip["models"][model] = entry
            if clip["sample_rate"] == 16000 and model == "MTT_musicnn":
                tags = out["taggram"].mean(0)
                top = np.argsort(-tags, kind="stable")[:5]
                clip["top_tags"] = [[labels_for(model)[i], float(tags[i])] for i in top]
            if clip["sample_rate"] != 16000:
                p = out["penultimate"].mean(0)
                cos = float(p @ pooled16[model] / np.linalg.norm(p) / np.linalg.norm(pooled16[model]))
                clip["models"][model]["cosine_to_16k_wav"] = cos
        print(f"{clip['audio']}: {clip['n_frames']} frames, {clip['n_patches']} patches, "
              + ", ".join(f"{m} cosine to the wav {e['cosine_to_16k_wav']:.5f}" for m, e in clip["models"].items()
                 if "cosine_to_16k_wav" in e))

    manifest = {
        "pad_mode": "reflect",
        "generated_by": "tools/export/make_fixtures.py",
        "librosa": librosa.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "soundfile": sf.__version__,
        "libsndfile": sf.__libsndfile_version__,
        "resampler": "librosa.load(sr=16000): soxr_hq; stereo is averaged to mono before resampling",
        "front_end": "log10(10000 * float32(float16(mel_power)) + 1) in float32 (numpy<2 promotion); n_fft 512, hop 256, 96 Slaney mels, "
        "fmax 8000, centred STFT, reflect padding, periodic hann; patches of 187 frames, no overlap, tail dropped",
        "models_run_with": "TensorFlow graph from the musicnn==0.1.0 checkpoints, all patches in one batch",
        "clips": clips,
    }
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"top tags ({MODELS[0]}, 16 kHz clip): {clips[0]['top_tags']}")


if __name__ == "__main__":
    main()
