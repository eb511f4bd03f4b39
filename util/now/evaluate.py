"""The NoW evaluation of a prediction folder (docs/formats.md §17): per subject the scan is
read and cropped once; per image the prediction is aligned to it and the distances from every
cropped scan vertex to the aligned mesh's surface are measured.

Images run in ``workers`` processes (scans first, one task per subject, then one task per
image); results come back in the order of the image list.
"""
import collections
import concurrent.futures
import multiprocessing
import signal

import numpy as np

from util.errors import one_line
from util.io.mesh_io import MeshError, load_mesh
from util.now.align import landmark_alignment, refine
from util.now.crop import crop_scan, face_sphere
from util.now.distance import ScanDistance, SurfaceIndex
from util.now.files import (NowFormatError, prediction_stem, read_pp, read_prediction,
                            scan_paths)

# cells of the scan for the distance queries: this fraction of the crop radius (~2 mm on a
# real face); the distances do not depend on it, only the speed does
CELL_PER_RADIUS = 1.0 / 50

Record = collections.namedtuple('Record', 'entry distances problem')
Record.__doc__ = """One image's outcome: its ImageEntry, distances (N,) in scan units (None when
it could not be evaluated) and ``problem`` (a one-line message naming the file, or None)."""

Scan = collections.namedtuple('Scan', 'vertices landmarks')
Scan.__doc__ = 'A subject\'s cropped scan: vertices (N,3) in the sphere, landmarks (7,3).'


def load_scan(root, subject):
    """The cropped scan of ``subject`` under the dataset root (NowFormatError naming the
    file when it is missing or unreadable)."""
    mesh_path, pp_path = scan_paths(root, subject)
    landmarks = read_pp(pp_path)
    try:
        vertices = load_mesh(mesh_path).v
    except MeshError as exc:
        raise NowFormatError(one_line(exc)) from exc
    cropped = crop_scan(vertices, landmarks)
    if len(cropped) == 0:
        raise NowFormatError('%s: no scan vertex lies in the face sphere of %s'
                             % (mesh_path, pp_path))
    return Scan(cropped, landmarks)


def scan_to_mesh(scan, vertices, faces, landmarks, metrical_scale=None):
    """Scan, predicted vertices (V,3), faces (F,3) and landmarks (7,3) -> (distances (N,)
    from each scan vertex to the aligned mesh, transform (scale, rotation, translation) that
    aligned it). ``metrical_scale``: scan units per prediction unit for the metrical
    protocol (rotation and translation only); None fits the scale too."""
    initial = landmark_alignment(scan.landmarks, landmarks, metrical_scale)
    cell = face_sphere(scan.landmarks)[1] * CELL_PER_RADIUS
    query = ScanDistance(scan.vertices, SurfaceIndex(vertices, faces), cell)
    transform, distances, _ = refine(query, initial, with_scale=metrical_scale is None)
    return distances, transform


def evaluate_image(scan, pred_root, entry, metrical_scale=None):
    """Record of one image: its prediction read, aligned and measured against ``scan``."""
    try:
        mesh, landmarks = read_prediction(pred_root, entry)
    except NowFormatError as exc:
        return Record(entry, None, str(exc))
    try:
        distances, _ = scan_to_mesh(scan, mesh.v, mesh.f, landmarks, metrical_scale)
    except (ValueError, np.linalg.LinAlgError) as exc:  # e.g. landmarks that all coincide
        return Record(entry, None, '%s: cannot be aligned (%s)'
                      % (prediction_stem(pred_root, entry), one_line(exc)))
    return Record(entry, distances, None)


def check_image(pred_root, entry):
    """Record of one image for --check: the prediction read and validated, not evaluated
    (distances None; problem None when it is usable)."""
    try:
        read_prediction(pred_root, entry)
    except NowFormatError as exc:
        return Record(entry, None, str(exc))
    return Record(entry, None, None)


def _load_scan_task(root, subject):
    try:
        return load_scan(root, subject), None
    except NowFormatError as exc:
        return None, str(exc)


class _InProcess:
    """The executor interface, run at once in this process (workers=1)."""

    def submit(self, fn, *args):
        future = concurrent.futures.Future()
        future.set_result(fn(*args))
        return future

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _ignore_sigint():
    """Workers leave Ctrl-C to the parent, which stops the pool (no traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _executor(workers):
    if workers <= 1:
        return _InProcess()
    # spawn: a fresh interpreter per worker, whatever threads the parent has started
    return concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context('spawn'), initializer=_ignore_sigint)


def evaluate(root, pred_root, entries, metrical_scale=None, workers=1, on_record=None,
             check_only=False):
    """[Record] for ``entries`` (ImageEntry list), in their order.

    ``on_record(record)`` is called in this process as each image finishes (any order).
    A subject whose scan cannot be used makes each of its images a Record with that problem.
    ``check_only``: validate the predictions only (no scans are read).
    """
    records = [None] * len(entries)

    def finished(index, record):
        records[index] = record
        if on_record is not None:
            on_record(record)

    with _executor(workers) as pool:
        try:
            _run(pool, root, pred_root, entries, metrical_scale, check_only, finished)
        except KeyboardInterrupt:
            if hasattr(pool, 'shutdown'):
                pool.shutdown(wait=False, cancel_futures=True)
            raise
    return records


def _run(pool, root, pred_root, entries, metrical_scale, check_only, finished):
    """evaluate()'s work on ``pool``; ``finished(index, record)`` for each image."""
    if check_only:
        futures = {pool.submit(check_image, pred_root, e): i for i, e in enumerate(entries)}
        for future in concurrent.futures.as_completed(futures):
            finished(futures[future], future.result())
        return
    subjects = sorted({e.subject for e in entries})
    scan_futures = {pool.submit(_load_scan_task, root, s): s for s in subjects}
    image_futures = {}
    for future in concurrent.futures.as_completed(scan_futures):
        subject = scan_futures[future]
        scan, problem = future.result()
        for i, entry in enumerate(entries):
            if entry.subject != subject:
                continue
            if scan is None:
                finished(i, Record(entry, None, problem))
            else:
                image_futures[pool.submit(evaluate_image, scan, pred_root, entry,
                                          metrical_scale)] = i
    for future in concurrent.futures.as_completed(image_futures):
        finished(image_futures[future], future.result())
