"""Unit tests of the builder: no corpus build needed (FluidSynth tests skip without it)."""
import os
import shutil

import numpy as np
import pytest

from cadenza_corpus import render, select
from cadenza_corpus.collections import COLLECTIONS, STRINGS_Q, VOICE_PIANO
from cadenza_corpus.worker import van_der_corput


def test_excerpt_positions_do_not_depend_on_how_many():
    assert [van_der_corput(j) for j in range(5)] == [0.0, 0.5, 0.25, 0.75, 0.125]


def test_programs_by_collection():
    assert STRINGS_Q.programs(["a", "b", "c", "d"]) == [40, 40, 41, 42]
    assert STRINGS_Q.programs(["a", "b", "c"]) == [40, 41, 42]
    assert VOICE_PIANO.programs(["Voice", "Piano", "Piano"]) == [53, 0, 0]


def test_plan_is_deterministic_and_covers_every_collection():
    a = select.plan("tiny", 1)
    b = select.plan("tiny", 1)
    assert [(u.path, u.number, u.excerpts) for u in a] == [(u.path, u.number, u.excerpts) for u in b]
    assert {u.collection for u in a} == {c.name for c in COLLECTIONS}
    assert 35 <= sum(len(u.excerpts) for u in a) <= 45
    other = {tid for u in select.plan("tiny", 2) for _, tid in u.excerpts}
    assert not other & {tid for u in a for _, tid in u.excerpts}


def test_twins_and_skipped_directories():
    logged = []
    col = next(c for c in COLLECTIONS if c.name == "beethoven_quartets")
    files = select.enumerate_files(col, select.corpus_root(), logged.append)
    assert "beethoven/opus18no1/movement1.mxl" in files
    assert "beethoven/opus18no1/movement1.krn" not in files
    assert any("twin of beethoven/opus18no1/movement1.mxl" in m for m in logged)
    for c in COLLECTIONS:
        assert not any(f.startswith("leadSheet/") for f in select.enumerate_files(c, select.corpus_root(), print))


def test_split_key_is_per_work():
    assert select.split_key("bach/bwv66.6") == select.split_key("bach/bwv66.6")
    assert len({select.split_key(f"w{i}") for i in range(200)}) == 10


def _tone(seconds, sr=render.SR):
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.stack([x, x], axis=1).astype(np.float32)


def test_finish_cuts_to_target_and_levels():
    clip, info = render.finish(_tone(40), gain_db=0.0)
    assert len(clip) == int(render.TARGET_S * render.SR)
    assert info["loops"] == 1
    assert abs(info["level_dbfs"] - render.REF_RMS_DBFS) < 1.0


def test_finish_loops_short_pieces_and_rejects_silence():
    clip, info = render.finish(_tone(12), gain_db=-3.0)
    assert len(clip) == int(render.TARGET_S * render.SR) and info["loops"] == 3
    with pytest.raises(render.RenderError, match="silent"):
        render.finish(np.zeros((render.SR * 35, 2), np.float32), gain_db=0.0)
    with pytest.raises(render.RenderError, match="too short"):
        render.finish(_tone(3), gain_db=0.0)


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not os.path.exists(render.SOUNDFONTS["FluidR3_GM"][0]),
                    reason="fluidsynth / FluidR3_GM not installed (make corpus-deps)")
def test_render_is_capped(tmp_path):
    from music21 import note, stream
    s = stream.Stream()
    for i in range(200):  # 200 s at the default 60 qpm... capped at 3 s of audio
        s.append(note.Note("C4", quarterLength=4))
    mid = str(tmp_path / "long.mid")
    s.write("midi", fp=mid)
    stereo, ended = render.fluidsynth(mid, str(tmp_path / "x.raw"), "FluidR3_GM", None, max_s=3.0)
    assert ended.startswith("capped")
    assert len(stereo) <= 3 * render.SR


def test_composer_names_lose_manuscript_sigla():
    from cadenza_corpus.worker import normalise_composer
    assert normalise_composer("Lorenzo F-Pn 568") == "Lorenzo"
    assert normalise_composer("Anonymous GB-Lbm 29987") == "Anonymous"
    assert normalise_composer("anonymous Venice Fava 4") == "Anonymous"
    assert normalise_composer("Anonymous I-Gr 197/I-Fol.") == "Anonymous"
    assert normalise_composer("Johannes Ciconia") == "Johannes Ciconia"
    assert normalise_composer("Carl Philipp Emanuel Bach") == "Carl Philipp Emanuel Bach"
