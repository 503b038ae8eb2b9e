"""music21 side: parse a corpus file, split it into movements, cut an excerpt, assign
instruments and a tempo, and write MIDI.

Excerpts are rebuilt from each part's flattened notes, rests and dynamics, so repeat
barlines, volta brackets and other repeat marks (which break music21's MIDI export) never
reach the MIDI file: repeats are *stripped* (both volta endings play in order). Short
single-part tunes are first expanded with `expandRepeats()` (AABB form, as a fiddler plays
them) when music21 can do it.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from music21 import corpus, dynamics, instrument, meter, midi, note, stream, tempo

# Tempo words → beats per minute for a quarter-note beat (scaled for other beats).
TEMPO_TERMS = [
    (r"grave|largo|larghetto", (42, 58)),
    (r"lento|adagio", (50, 70)),
    (r"andantino|andante", (72, 96)),
    (r"moderato|maestoso", (84, 108)),
    (r"allegretto", (100, 126)),
    (r"vivace|vivo", (132, 168)),
    (r"presto|prestissimo", (144, 184)),
    (r"allegro", (116, 150)),
]
MOVEMENT_BARLINES = {"final", "light-heavy", "double", "light-light", "heavy-heavy"}


@dataclass
class Piece:
    """A parsed work (or one tune of an ABC collection), flattened for fast excerpting."""
    score: stream.Score
    part_names: list[str]
    measures: list[tuple[float, float]]   # (offset, end offset) of each measure of part 0
    segments: list[tuple[int, int, str]]  # (first measure, last measure + 1, movement label)
    repeats: str                          # "expanded" | "stripped"
    title: str
    composer: str | None
    rights: str | None
    flats: list = None  # each part's flattened notes and dynamics, computed once


def load(path: str, number: int | None) -> stream.Score:
    s = corpus.parse(path, number=number) if number is not None else corpus.parse(path)
    if isinstance(s, stream.Opus):
        s = s.scores[0]
    return s


def _keep_parts(s: stream.Score) -> list[stream.Part]:
    parts = list(s.parts)
    satb = [p for p in parts if (p.partName or "").strip().lower() in ("soprano", "alto", "tenor", "bass")]
    # Bach chorales sometimes carry doubling instrument parts (horn, oboe): keep the choir.
    return satb if len(satb) >= 3 else parts


def prepare(path: str, number: int | None, multi_movement: bool) -> Piece:
    s = load(path, number)
    repeats = "stripped"
    parts = _keep_parts(s)
    if len(parts) == 1 and len(parts[0].getElementsByClass(stream.Measure)) <= 80:
        try:
            expanded = s.expandRepeats()
            if expanded.highestTime >= s.highestTime:
                s, repeats = expanded, "expanded"
                parts = _keep_parts(s)
        except Exception:  # music21 cannot expand every repeat structure; strip instead
            pass
    m_list = list(parts[0].getElementsByClass(stream.Measure))
    if m_list:
        measures = [(float(m.offset), float(m.offset + m.duration.quarterLength)) for m in m_list]
    else:  # no measures: pretend 4-beat bars
        end = float(parts[0].highestTime)
        measures = [(float(o), float(min(o + 4, end))) for o in range(0, int(end), 4)]
    segments = _segments(m_list, multi_movement) if m_list else [(0, len(measures), "")]
    md = s.metadata
    title = (md.title or md.movementName or "") if md else ""
    composer = md.composer if md else None
    rights = str(md.copyright) if md and md.copyright else None
    s = stream.Score([p for p in parts])
    flats = []
    for p in parts:
        flat = p.flatten()
        flats.append([(float(e.getOffsetBySite(flat)), e)
                      for e in flat.getElementsByClass([note.GeneralNote, dynamics.Dynamic])])
    return Piece(s, [p.partName or "" for p in parts], measures, segments, repeats,
                 title.strip(), composer, rights, flats)


def _segments(m_list, multi_movement: bool) -> list[tuple[int, int, str]]:
    """Split a multi-movement file at tempo marks that follow a final/double barline or come
    with a new time signature; merge sections shorter than 24 measures into the previous."""
    if not multi_movement:
        return [(0, len(m_list), "")]
    starts = [0]
    for i in range(1, len(m_list)):
        m, prev = m_list[i], m_list[i - 1]
        has_tempo = bool(m.getElementsByClass(tempo.TempoIndication))
        bl = prev.rightBarline
        strong_bar = bl is not None and bl.type in MOVEMENT_BARLINES and not (
            bl.classes[0] == "Repeat" and bl.type != "final")
        new_ts = bool(m.getElementsByClass(meter.TimeSignature))
        if has_tempo and (strong_bar or new_ts):
            if i - starts[-1] >= 24:
                starts.append(i)
    bounds = starts + [len(m_list)]
    return [(bounds[k], bounds[k + 1], str(k + 1)) for k in range(len(starts))]


def time_signature_at(piece: Piece, measure: int) -> meter.TimeSignature:
    offset = piece.measures[measure][0]
    part = piece.score.parts[0]
    ts = None
    for t in part.recurse().getElementsByClass(meter.TimeSignature):
        if t.getOffsetInHierarchy(part) <= offset + 1e-6:
            ts = t
        else:
            break
    return ts or meter.TimeSignature("4/4")


def tempo_marking(piece: Piece, seg_first: int) -> str:
    """The tempo word written at the start of a movement, if any (used to pick a range)."""
    lo, hi = piece.measures[seg_first][0], piece.measures[min(seg_first + 1, len(piece.measures) - 1)][1]
    part = piece.score.parts[0]
    for t in part.recurse().getElementsByClass(tempo.TempoIndication):
        off = t.getOffsetInHierarchy(part)
        if lo - 1e-6 <= off < hi:
            text = getattr(t, "text", None)
            if text:
                return str(text).strip()
    return ""


def tempo_range(marking: str, default: tuple[int, int]) -> tuple[int, int]:
    """Pulse range (beats per minute for a quarter or dotted-quarter beat) for a movement:
    from its tempo word when it has one, else the collection's default."""
    low = marking.lower()
    for pattern, r in TEMPO_TERMS:
        if re.search(pattern, low):
            return r
    return default


def beat_factor(beat_ql: float) -> float:
    """Pulse → beats of the time signature: a half-note beat (2/2, 4/2) is counted at 0.6 of a
    quarter-note pulse, a whole-note beat (4/1) at 0.3, a dotted-quarter beat (6/8) at 0.85,
    an eighth beat (2/8) at 1.6."""
    if beat_ql >= 2:
        return 1.2 / beat_ql
    if beat_ql == 1.5:
        return 0.85
    if beat_ql <= 0.75:
        return 1.6
    return 1.0


def excerpt_score(piece: Piece, first: int, last: int, programs: list[int], qpm: float) -> stream.Score:
    """Measures [first, last) of every part as a new score with the given programs and one
    tempo; notes, chords, rests and dynamics only (no barlines, no repeat marks)."""
    start, end = piece.measures[first][0], piece.measures[last - 1][1]
    out = stream.Score()
    for elements, program in zip(piece.flats, programs):
        new = stream.Part()
        inst = instrument.Instrument()
        inst.midiProgram = program
        new.insert(0, inst)
        new.insert(0, tempo.MetronomeMark(number=qpm, referent=1.0))
        last_dyn = None
        for off, el in elements:
            if isinstance(el, dynamics.Dynamic):
                if off <= start:
                    last_dyn = el
                elif off < end:
                    new.insert(off - start, dynamics.Dynamic(el.value))
                continue
            if off < start or off >= end or el.duration.quarterLength <= 0:
                continue  # outside the excerpt, or a grace note
            if isinstance(el, note.Rest):
                continue
            c = copy.deepcopy(el)
            c.duration.quarterLength = min(el.duration.quarterLength, end - off)
            new.insert(off - start, c)
        if last_dyn is not None:
            new.insert(0, dynamics.Dynamic(last_dyn.value))
        out.insert(0, new)
    return out


def write_midi(s: stream.Score, path: str, velocity_scale: float = 1.0) -> float:
    """Write MIDI with every note-on velocity scaled (a per-clip dynamic level on top of the
    score's own dynamics); return the mean note-on velocity (1-127) of what was written."""
    mf = midi.translate.streamToMidiFile(s)
    vels = []
    for t in mf.tracks:
        for e in t.events:
            if e.type == midi.ChannelVoiceMessages.NOTE_ON and e.velocity:
                e.velocity = max(1, min(127, round(e.velocity * velocity_scale)))
                vels.append(e.velocity)
    mf.open(path, "wb")
    mf.write()
    mf.close()
    return sum(vels) / len(vels) if vels else 0.0


def key_name(s: stream.Score) -> str:
    try:
        k = s.analyze("key")
        return f"{k.tonic.name.replace('-', 'b')} {k.mode}"
    except Exception:
        return ""
