"""Orchestration, the top layer below the command line: sources turn inputs into frames, a
backend is handed in, and the pipeline turns each frame into every requested output.

``from util.pipeline import Pipeline`` keeps working as before; nothing here imports
TensorFlow (the backend factory does, when called).
"""
from util.pipeline.pipeline import Pipeline  # noqa: F401
