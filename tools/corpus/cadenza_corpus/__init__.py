"""cadenza's evaluation corpus: music21's scored works rendered to audio with FluidSynth.

`python -m cadenza_corpus build --preset tiny` writes data/corpus/tiny/ (catalogue.jsonl,
catalogue.csv, audio/*.flac, composition.png, build.log). See tools/corpus/README.md.
"""
