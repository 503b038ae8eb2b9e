"""Which music21 corpus files we render, and how: one entry per collection.

Instruments are assigned per collection (the files' own instrument fields are unreliable),
as a weighted list of *variants*; each clip draws one and the catalogue records it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# General MIDI programs (0-based) used below.
GM = {
    "piano": 0, "harpsichord": 6, "church organ": 19, "violin": 40, "viola": 41, "cello": 42,
    "contrabass": 43, "string ensemble": 48, "choir": 52, "voice": 53, "clarinet": 71,
    "flute": 73,
}
GM_NAME = {v: k for k, v in GM.items()}


@dataclass(frozen=True)
class Variant:
    """An ensemble: programs for the top part, the inner parts and the bottom part."""
    weight: float
    ensemble: str
    lead: str
    top: str
    inner: str | None = None
    bottom: str | None = None
    by_name: bool = False  # map programs from part names (see NAME_RULES) instead

    def programs(self, part_names: list[str]) -> list[int]:
        n = len(part_names)
        if self.by_name:
            return [program_for_name(p, vocal=self.top, default=self.top) for p in part_names]
        inner, bottom = self.inner or self.top, self.bottom or self.inner or self.top
        out = []
        for i in range(n):
            name = self.top if i == 0 else bottom if i == n - 1 else inner
            if self.ensemble == "string quartet" and 0 < i < n - 1:
                name = "violin" if i == 1 and n >= 4 else "viola"
            out.append(GM[name])
        return out


NAME_RULES = [
    ("violin", "violin"), ("viola", "viola"), ("cello", "cello"), ("clarinet", "clarinet"),
    ("piano", "piano"), ("flute", "flute"),
]
VOCAL_NAMES = ("voice", "soprano", "alto", "tenor", "bass", "choir", "canto")


def program_for_name(part_name: str, vocal: str, default: str) -> int:
    low = (part_name or "").lower()
    for key, inst in NAME_RULES:
        if key in low:
            return GM[inst]
    if any(v in low for v in VOCAL_NAMES):
        return GM[vocal]
    return GM[default]


@dataclass(frozen=True)
class Collection:
    name: str
    globs: tuple[str, ...]
    era: str
    variants: tuple[Variant, ...]
    quota: dict[str, int]          # clips per preset
    tempo: tuple[int, int]         # pulse range: bpm of a quarter / dotted-quarter beat (see score.beat_factor)
    composer: str | None = None    # None: from the file's metadata (fallback below)
    composer_fallback: str = "Anonymous"
    licence: str = "music21 corpus; work in the public domain; encoding distributed with music21"
    opus: bool = False             # ABC files holding many tunes (X: numbers)
    max_excerpts: int = 1          # excerpts per movement
    tiny_files: tuple[str, ...] = ()  # small files tiny may use (fast to parse)
    exclude: tuple[str, ...] = ()  # substrings of paths to skip
    multi_movement: tuple[str, ...] = ()  # files holding several movements (split them)
    title_from_composer: bool = False  # monteverdi files keep the title in the composer field
    overrides: dict = field(default_factory=dict)  # path -> dict(composer, era, variants, ...)


STRINGS_Q = Variant(0.8, "string quartet", "violin", "violin", "viola", "cello")
STRINGS_O = Variant(0.2, "string orchestra", "strings", "string ensemble", "string ensemble", "string ensemble")
CHOIR = Variant(1.0, "choir", "voice", "choir")
SOLO_VIOLIN = Variant(1.0, "solo violin", "violin", "violin")
SOLO_FLUTE = Variant(1.0, "solo flute", "flute", "flute")
PIANO = Variant(1.0, "piano", "piano", "piano")
VOICE_PIANO = Variant(1.0, "voice and piano", "voice", "voice", "piano", "piano")

QUARTET_MM = ("beethoven/opus18no3.mxl", "beethoven/opus18no4.mxl", "beethoven/opus18no5.mxl",
              "beethoven/opus74.mxl", "beethoven/opus132.mxl")

COLLECTIONS: tuple[Collection, ...] = (
    Collection(
        "beethoven_quartets", ("beethoven/*.mxl", "beethoven/*/*.mxl", "beethoven/*/*.krn"),
        "classical", (STRINGS_Q, STRINGS_O), {"tiny": 3, "default": 90, "full": 260}, (60, 132),
        composer="Ludwig van Beethoven", max_excerpts=8,
        tiny_files=("beethoven/opus18no1/movement3.mxl", "beethoven/opus59no2/movement2.mxl"),
        multi_movement=QUARTET_MM),
    Collection(
        "mozart_quartets", ("mozart/k*/movement*.mxl",), "classical", (STRINGS_Q, STRINGS_O),
        {"tiny": 2, "default": 60, "full": 150}, (60, 132), composer="Wolfgang Amadeus Mozart",
        max_excerpts=6, exclude=("k545",),
        tiny_files=("mozart/k80/movement3.mxl", "mozart/k156/movement4.mxl")),
    Collection(
        "haydn_quartets", ("haydn/*/*.mxl",), "classical", (STRINGS_Q, STRINGS_O),
        {"tiny": 2, "default": 45, "full": 100}, (60, 132), composer="Joseph Haydn",
        max_excerpts=8, tiny_files=("haydn/opus1no1/movement2.mxl", "haydn/opus1no1/movement4.mxl")),
    Collection(
        "schumann_quartet", ("schumann_robert/opus41no1/*.mxl",), "romantic", (STRINGS_Q, STRINGS_O),
        {"tiny": 1, "default": 30, "full": 60}, (56, 132), composer="Robert Schumann",
        max_excerpts=10, tiny_files=("schumann_robert/opus41no1/movement2.mxl",)),
    Collection(
        "bach_chorales", ("bach/*.mxl", "bach/*.xml", "bach/*.krn"), "baroque",
        (Variant(0.45, "choir", "voice", "choir"),
         Variant(0.35, "organ", "organ", "church organ"),
         Variant(0.20, "string orchestra", "strings", "string ensemble", "string ensemble", "contrabass")),
        {"tiny": 6, "default": 185, "full": 400}, (56, 84), composer="Johann Sebastian Bach",
        tiny_files=("bach/bwv66.6.mxl", "bach/bwv26.6.mxl", "bach/bwv40.8.mxl", "bach/bwv281.mxl",
                    "bach/bwv267.mxl", "bach/bwv153.1.mxl")),
    Collection(
        "corelli", ("corelli/*/*.xml",), "baroque",
        (Variant(0.6, "string orchestra", "strings", "string ensemble", "string ensemble", "contrabass"),
         Variant(0.4, "baroque trio", "violin", "violin", "violin", "harpsichord")),
        {"tiny": 1, "default": 3, "full": 3}, (44, 66), composer="Arcangelo Corelli", max_excerpts=3,
        tiny_files=("corelli/opus3no1/1grave.xml",)),
    Collection(
        "palestrina", ("palestrina/*.krn",), "renaissance", (CHOIR,),
        {"tiny": 2, "default": 100, "full": 380}, (66, 108), composer="Giovanni Pierluigi da Palestrina",
        max_excerpts=2, exclude=("_rpt", "_a.krn", "_b.krn", "_c.krn"),
        tiny_files=("palestrina/Agnus_01.krn", "palestrina/Kyrie_02.krn")),
    Collection(
        "monteverdi", ("monteverdi/*.mxl",), "renaissance", (CHOIR,),
        {"tiny": 2, "default": 60, "full": 110}, (56, 90), composer="Claudio Monteverdi",
        title_from_composer=True,
        max_excerpts=3, tiny_files=("monteverdi/madrigal.3.1.mxl", "monteverdi/madrigal.4.3.mxl")),
    Collection(
        "medieval", ("trecento/*.xml", "luca/*.xml", "ciconia/*.xml", "lusitano/*.mxl"), "medieval",
        (CHOIR,), {"tiny": 1, "default": 35, "full": 100}, (50, 84), composer=None,
        licence="music21 corpus; encodings by M. S. Cuthbert (CC-BY-SA 3.0 / CC0, see file rights)",
        max_excerpts=2, tiny_files=("luca/gloria.xml",)),
    Collection(
        "ryans_mammoth", ("ryansMammoth/*.abc",), "traditional", (SOLO_VIOLIN,),
        {"tiny": 4, "default": 115, "full": 400}, (84, 126), composer="Traditional",
        licence="music21 corpus; Ryan's Mammoth Collection (1883), public domain",
        tiny_files=("ryansMammoth/AcaciaReel.abc", "ryansMammoth/AcrobatsHornpipe.abc",
                    "ryansMammoth/7thRegimentReel.abc", "ryansMammoth/AdmiralsHornpipe.abc")),
    Collection(
        "oneills", ("oneills1850/*.abc",), "traditional", (SOLO_VIOLIN,),
        {"tiny": 3, "default": 80, "full": 350}, (84, 126), composer="Traditional", opus=True,
        licence="music21 corpus; O'Neill's Music of Ireland (1903), public domain",
        tiny_files=("oneills1850/0001-0050.abc",)),
    Collection(
        "airds", ("airdsAirs/*.abc",), "traditional",
        (Variant(0.6, "solo violin", "violin", "violin"), Variant(0.4, "solo flute", "flute", "flute")),
        {"tiny": 3, "default": 50, "full": 200}, (70, 120), composer="Traditional", opus=True,
        licence="music21 corpus; Aird's Selection of Airs (1782-1803), public domain",
        tiny_files=("airdsAirs/book1.abc",)),
    Collection(
        "fife", ("miscFolk/*.abc",), "traditional", (SOLO_FLUTE,),
        {"tiny": 2, "default": 25, "full": 60}, (84, 120), composer="Traditional", opus=True,
        licence="music21 corpus; American fife / Northumbrian minstrelsy collections, public domain",
        tiny_files=("miscFolk/americanfifeopus.abc",)),
    Collection(
        "essen", ("essenFolksong/*.abc",), "traditional",
        (Variant(0.5, "solo flute", "flute", "flute"), Variant(0.5, "solo voice", "voice", "voice")),
        {"tiny": 4, "default": 110, "full": 450}, (66, 112), composer="Traditional", opus=True,
        exclude=("/test",),
        licence="music21 corpus; Essen Folksong Collection: non-commercial distribution and use "
                "permitted (essenFolksong/license.txt)",
        tiny_files=("essenFolksong/altdeu10.abc", "essenFolksong/kinder0.abc")),
    Collection(
        "piano", ("chopin/*.krn", "joplin/*.mxl", "mozart/k545/*.mxl", "cpebach/*.mxl",
                  "schoenberg/opus19/*.mxl", "schumann_clara/polonaise*.mxl", "verdi/*.mxl"),
        "romantic", (PIANO,), {"tiny": 2, "default": 30, "full": 40}, (60, 120), composer=None,
        max_excerpts=4, tiny_files=("chopin/mazurka06-2.krn", "schumann_clara/polonaise_op1n2.mxl"),
        overrides={
            "joplin/maple_leaf_rag.mxl": {"composer": "Scott Joplin", "era": "modern"},
            "mozart/k545/movement1_exposition.mxl": {"composer": "Wolfgang Amadeus Mozart", "era": "classical"},
            "cpebach/h186.mxl": {"composer": "Carl Philipp Emanuel Bach", "era": "classical"},
            "schoenberg/opus19/movement2.mxl": {"composer": "Arnold Schoenberg", "era": "modern"},
            "schoenberg/opus19/movement6.mxl": {"composer": "Arnold Schoenberg", "era": "modern"},
            "chopin/mazurka06-2.krn": {"composer": "Frédéric Chopin"},
            "verdi/laDonnaEMobile.mxl": {"composer": "Giuseppe Verdi", "title": "La donna è mobile (piano)"},
        },
        composer_fallback="Clara Schumann"),
    Collection(
        "songs_chamber", ("schubert/*.xml", "schumann_robert/dichterliebe_no2.xml", "handel/*/*.mxl",
                          "beach/*.musicxml", "liliuokalani/*.mxl", "johnson_j_r/*.mxl",
                          "weber/*.mxl", "schumann_clara/opus17/*.xml"),
        "romantic", (VOICE_PIANO,), {"tiny": 2, "default": 30, "full": 45}, (56, 112), composer=None,
        max_excerpts=4, tiny_files=("schubert/Lindenbaum.xml", "schumann_robert/dichterliebe_no2.xml"),
        overrides={
            "handel/rinaldo/Lascia_chio_pianga.mxl": {"composer": "George Frideric Handel", "era": "baroque",
                                                      "title": "Lascia ch'io pianga (Rinaldo)"},
            "beach/prayer_of_a_tired_child.musicxml": {
                "composer": "Amy Beach", "era": "modern",
                "variants": (Variant(1.0, "choir and piano", "voice", "choir", by_name=True),)},
            "johnson_j_r/lift_every_voice.mxl": {
                "composer": "J. Rosamond Johnson", "era": "modern", "variants": (CHOIR,)},
            "liliuokalani/aloha_oe.mxl": {
                "composer": "Liliʻuokalani",
                "variants": (Variant(1.0, "choir and piano", "voice", "choir", by_name=True),)},
            "weber/concertino_clarinet.mxl": {
                "composer": "Carl Maria von Weber", "max_excerpts": 8,
                "variants": (Variant(1.0, "clarinet and piano", "clarinet", "piano", by_name=True),)},
            "schumann_clara/opus17/movement3.xml": {
                "composer": "Clara Schumann", "max_excerpts": 8,
                "variants": (Variant(1.0, "piano trio", "violin", "piano", by_name=True),)},
        }),
)

# Never rendered: lead sheets carry their own (mostly non-free) licences; theory exercises
# and demos are not music; schumann_robert/opus48no2 is a twin of dichterliebe_no2.
SKIP_PREFIXES = ("leadSheet/", "theoryExercises/", "demos/", "_metadataCache/")
SKIP_FILES = {"schumann_robert/opus48no2.mxl": "twin of schumann_robert/dichterliebe_no2.xml"}
FORBIDDING_RIGHTS = ("all rights reserved", "not for distribution", "do not distribute")
