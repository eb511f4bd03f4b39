"""Orchestration, the top layer below the command line: inputs are listed (inputs.py) and read
into pictures (reading.py), a backend is handed in, and the runner (runner.py) turns each frame
into every requested output (util.outputs), writing on a second thread.

``from util.pipeline import Pipeline`` keeps working as before; nothing here imports
TensorFlow (util.model.backend does, when called).
"""
from util.pipeline.runner import Pipeline  # noqa: F401
