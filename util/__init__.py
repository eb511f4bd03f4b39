"""RingNet's library code, in layers (docs/ARCHITECTURE.md)."""
import os

# the repository's root folder: what Ray ships to its workers, where the sample image lives
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
