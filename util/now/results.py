"""The results folder of an evaluation, PRED/results/ (docs/formats.md §17)::

    distances/<subject>/<challenge>/<name>.npy   (N,) float64 distances of one image (mm)
    results.json  results.csv                   util.now.metrics
    cumulative_error.png                        util.now.plot

Every file is written atomically; a distances file of an image that is now missing is removed,
so a results folder never mixes runs.
"""
import contextlib
import glob
import os

import numpy as np

from util.errors import one_line
from util.io.atomic import atomic_path
from util.io.safe_pickle import load_npy

RESULTS = 'results'
DISTANCES = 'distances'
FILES = ('results.json', 'results.csv', 'cumulative_error.png')


def distances_path(results_dir, entry):
    """distances/<subject>/<challenge>/<name>.npy of an ImageEntry."""
    return os.path.join(results_dir, DISTANCES, entry.subject, entry.challenge,
                        entry.name + '.npy')


def write_bytes(path, data):
    """``data`` to ``path`` atomically (folders made as needed)."""
    with atomic_path(path) as tmp, open(tmp, 'wb') as fh:
        fh.write(data)


def write_record(results_dir, record):
    """Write an evaluated image's distances; remove a stale file of a missing one."""
    path = distances_path(results_dir, record.entry)
    if record.distances is None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    else:
        with atomic_path(path) as tmp:
            np.save(tmp, np.asarray(record.distances, dtype=np.float64), allow_pickle=False)


def find_results(folder):
    """The results folder meant by ``folder`` (a results folder, or a prediction folder
    holding results/), or None when neither holds distances/."""
    for candidate in (folder, os.path.join(folder, RESULTS)):
        if os.path.isdir(os.path.join(candidate, DISTANCES)):
            return candidate
    return None


def read_all_distances(results_dir):
    """Every distances file under results_dir/distances/, pooled -> (N,) float64 (ValueError
    naming the file when one is unreadable)."""
    pattern = os.path.join(glob.escape(results_dir), DISTANCES, '*', '*', '*.npy')
    arrays = []
    for path in sorted(glob.glob(pattern)):
        try:
            arrays.append(np.ravel(load_npy(path)).astype(np.float64))
        except (OSError, ValueError, TypeError) as exc:  # PickleFormatError is a ValueError
            raise ValueError('%s: unreadable distances (%s)'
                             % (path, one_line(exc))) from exc
    return np.concatenate(arrays) if arrays else np.zeros(0)
