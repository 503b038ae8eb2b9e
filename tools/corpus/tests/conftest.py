import os
import sys

# Make `cadenza_corpus` importable however pytest is started.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
