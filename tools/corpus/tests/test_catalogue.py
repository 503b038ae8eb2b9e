"""Checks on a *built* corpus (make corpus PRESET=tiny; make corpus-test PRESET=tiny).

CADENZA_CORPUS_DIR points at data/corpus/<preset>; without a built catalogue these tests are
skipped, unless CADENZA_CORPUS_REQUIRED=1 (what `make corpus-test` sets): then they fail."""
import csv
import json
import os
import re

import numpy as np
import pytest
import soundfile as sf

from cadenza_corpus.report import FIELDS, csv_value
from cadenza_corpus.render import RMS_FLOOR_DBFS, TARGET_S

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CORPUS_DIR = os.environ.get("CADENZA_CORPUS_DIR", os.path.join(REPO, "data", "corpus", "tiny"))
ERAS = {"medieval", "renaissance", "baroque", "classical", "romantic", "modern", "traditional"}
SOUNDFONTS = {"FluidR3_GM", "MuseScore_General"}


@pytest.fixture(scope="module")
def rows():
    path = os.path.join(CORPUS_DIR, "catalogue.jsonl")
    if not os.path.exists(path):
        msg = f"no catalogue at {path}: run `make corpus PRESET=...` first"
        if os.environ.get("CADENZA_CORPUS_REQUIRED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    with open(path, encoding="utf-8") as f:
        out = [json.loads(line) for line in f if line.strip()]
    assert out, "empty catalogue"
    return out


def test_schema(rows):
    ids = set()
    for r in rows:
        assert list(r) == FIELDS, r.get("track_id")
        assert r["track_id"] not in ids, f"duplicate id {r['track_id']}"
        ids.add(r["track_id"])
        for key in ("title", "work_id", "composer", "ensemble", "lead_instrument", "source_file",
                    "licence_note", "instruments"):
            assert isinstance(r[key], str) and r[key], (r["track_id"], key)
        assert r["era"] in ERAS, r["era"]
        assert isinstance(r["split_key"], int) and 0 <= r["split_key"] <= 9
        assert r["audio_path"] == f"audio/{r['track_id']}.flac"
        assert isinstance(r["distractor"], bool)
        if r["distractor"]:  # real recordings: no score, so no score-derived metadata
            assert re.fullmatch(r"d[0-9a-f]{10}", r["track_id"]), r["track_id"]
            assert r["tempo_bpm"] is None and r["key"] is None and r["soundfont"] is None
            continue
        assert re.fullmatch(r"c[0-9a-f]{10}", r["track_id"]), r["track_id"]
        assert isinstance(r["time_signature"], str) and r["time_signature"]
        assert isinstance(r["tempo_bpm"], int) and 10 <= r["tempo_bpm"] <= 240, r["tempo_bpm"]
        assert 30 <= r["tempo_qpm"] <= 260, r["tempo_qpm"]
        assert r["tempo_band"] in {"slow", "moderate", "fast", "very fast"}
        assert 1 <= r["mean_dynamic"] <= 127
        assert r["soundfont"] in SOUNDFONTS
        assert r["reverb"] in {"on", "off"}
        assert -12 <= r["gain_db"] <= 12
        assert not os.path.isabs(r["audio_path"])
        assert all(p.isdigit() and 0 <= int(p) < 128 for p in r["midi_programs"].split("|"))


def test_split_is_by_work(rows):
    fold = {}
    for r in rows:
        assert fold.setdefault(r["work_id"], r["split_key"]) == r["split_key"], r["work_id"]


def test_audio_files_exist_decode_and_last_the_target(rows):
    for r in rows:
        path = os.path.join(CORPUS_DIR, r["audio_path"])
        assert os.path.exists(path), path
        info = sf.info(path)
        assert info.format == "FLAC" and info.channels == 1, (path, info)
        assert info.samplerate >= 22050, (path, info.samplerate)
        assert abs(info.duration - TARGET_S) <= 1.0, (path, info.duration)
        assert abs(info.duration - r["duration_s"]) < 0.05, (path, info.duration, r["duration_s"])


def test_no_clip_is_silent(rows):
    for r in rows:
        x, _ = sf.read(os.path.join(CORPUS_DIR, r["audio_path"]), dtype="float32")
        rms_db = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-20)
        assert rms_db > RMS_FLOOR_DBFS, (r["track_id"], rms_db)
        # sound through the clip, not one burst: at most a third of 1 s windows near-silent
        n = len(x) // 22050
        win = 10 * np.log10(np.mean(x[: n * 22050].reshape(n, -1).astype(np.float64) ** 2, axis=1) + 1e-20)
        assert np.mean(win < rms_db - 40) < 0.34, r["track_id"]


def test_jsonl_and_csv_agree(rows):
    with open(os.path.join(CORPUS_DIR, "catalogue.csv"), encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == FIELDS
        csv_rows = list(reader)
    assert len(csv_rows) == len(rows)
    for j, c in zip(rows, csv_rows):
        for k in FIELDS:
            assert c[k] == csv_value(j[k]), (j["track_id"], k, c[k], j[k])


def test_variation_and_coverage(rows):
    if len(rows) < 30:
        pytest.skip("too few clips to judge coverage")
    scored = [r for r in rows if not r["distractor"]]
    assert {r["soundfont"] for r in scored} == SOUNDFONTS
    assert {r["reverb"] for r in scored} == {"on", "off"}
    assert len({r["ensemble"] for r in rows}) >= 6
    assert len({r["composer"] for r in rows}) >= 10
    assert len({round(r["gain_db"]) for r in rows}) >= 3


def test_composition_figure(rows):
    png = os.path.join(CORPUS_DIR, "composition.png")
    assert os.path.exists(png) and os.path.getsize(png) > 5000
