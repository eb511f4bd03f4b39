"""The NoW dataset's files and folders, and a prediction folder in NoW's layout
(docs/formats.md §17).

Dataset root NOW (as the official evaluation expects it)::

    NOW/imagepathsvalidation.txt, imagepathstest.txt   lines 'subject/challenge/name.jpg'
    NOW/NoW_Dataset/final_release_version/iphone_pictures/subject/challenge/name.jpg
    NOW/NoW_Dataset/final_release_version/detected_face/subject/challenge/name.npy
    NOW/scans/subject/*.obj                    one scan per subject (millimetres)
    NOW/scans_lmks_onlypp/subject/*.pp         its 7 landmarks (MeshLab picked points)

(some copies keep the image lists inside NoW_Dataset/; both places are looked at). A
prediction for 'subject/challenge/name.jpg' is PRED/subject/challenge/name.obj (or .ply) with
its 7 landmarks in name.npy (or .txt).
"""
import collections
import glob
import os
import xml.etree.ElementTree as ElementTree

import numpy as np

from util.errors import one_line
from util.io.mesh_io import MeshError, load_mesh
from util.io.safe_pickle import PickleFormatError, UnsafePickleError, load_npy, load_npy_dict

CHALLENGES = ('multiview_neutral', 'multiview_expressions', 'multiview_occlusions', 'selfie')
IMAGE_LISTS = {'val': 'imagepathsvalidation.txt', 'test': 'imagepathstest.txt'}
RELEASE = os.path.join('NoW_Dataset', 'final_release_version')
N_LANDMARKS = 7


class NowFormatError(ValueError):
    """A NoW file (or a prediction) is missing, unreadable or of the wrong shape; the message
    is one line and names the file."""


ImageEntry = collections.namedtuple('ImageEntry', 'line subject challenge name')
ImageEntry.__doc__ = """One line of an image list: the line itself ('subject/challenge/name.jpg'),
and its parts; ``name`` is the file name without its extension."""


def image_list_path(root, split):
    """The image list of ``split`` ('val' or 'test') under the dataset root; NowFormatError
    naming the expected place when it is in neither."""
    places = [os.path.join(root, IMAGE_LISTS[split]),
              os.path.join(root, 'NoW_Dataset', IMAGE_LISTS[split])]
    for path in places:
        if os.path.isfile(path):
            return path
    raise NowFormatError('%s: no such file (the NoW image list of the %s split; also looked '
                         'for %s)' % (places[0], split, places[1]))


def read_image_list(path):
    """Image list file -> [ImageEntry], blank lines skipped; a line without
    subject/challenge/name is refused (NowFormatError naming the line)."""
    try:
        with open(path, encoding='utf-8') as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise NowFormatError('%s: cannot read the image list (%s)' % (path, one_line(exc))) \
            from exc
    entries = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        parts = line.replace('\\', '/').split('/')
        if len(parts) < 3 or not all(parts[-3:]):
            raise NowFormatError('%s:%d: expected subject/challenge/name.jpg, got %r'
                                 % (path, number, line))
        entries.append(ImageEntry(line, parts[-3], parts[-2], os.path.splitext(parts[-1])[0]))
    return entries


def image_path(root, entry):
    """The photo of an image-list entry."""
    return os.path.join(root, RELEASE, 'iphone_pictures', entry.subject, entry.challenge,
                        entry.name + os.path.splitext(entry.line)[1])


def box_path(root, entry):
    """The detected_face .npy of an image-list entry."""
    return os.path.join(root, RELEASE, 'detected_face', entry.subject, entry.challenge,
                        entry.name + '.npy')


def _only_file(folder, pattern, what):
    found = sorted(glob.glob(os.path.join(glob.escape(folder), pattern)))
    if not found:
        raise NowFormatError('%s: no %s file (%s) for this subject' % (folder, pattern, what))
    return found[0]


def scan_paths(root, subject):
    """(scan .obj, its landmarks .pp) of a subject."""
    return (_only_file(os.path.join(root, 'scans', subject), '*.obj', 'the scan'),
            _only_file(os.path.join(root, 'scans_lmks_onlypp', subject), '*.pp',
                       'the scan landmarks'))


def read_pp(path):
    """MeshLab picked-points file -> (7,3) float64, the points in file order.

    Like the official reader the values are taken at float32 precision (it stores them in a
    float32 array), so the crop sphere is computed from the same numbers.
    """
    try:
        root = ElementTree.parse(path).getroot()
        points = [[float(p.attrib[axis]) for axis in 'xyz'] for p in root.iter('point')]
    except (OSError, ElementTree.ParseError) as exc:
        raise NowFormatError('%s: not a readable MeshLab .pp file (%s)'
                             % (path, one_line(exc))) from exc
    except (KeyError, ValueError) as exc:
        raise NowFormatError('%s: a point without numeric x, y, z (%s)'
                             % (path, one_line(exc))) from exc
    if len(points) != N_LANDMARKS:
        raise NowFormatError('%s: %d picked points, expected %d'
                             % (path, len(points), N_LANDMARKS))
    return np.asarray(points, dtype=np.float32).astype(np.float64)


def read_box(path):
    """detected_face .npy (np.save of a dict with left, top, right, bottom in pixels; the
    originals are Python 2 pickles) -> (x0, y0, x1, y1) floats."""
    try:
        data = load_npy_dict(path)
    except OSError as exc:
        raise NowFormatError('%s: cannot read (%s)' % (path, exc.strerror or exc)) from exc
    except (PickleFormatError, UnsafePickleError) as exc:
        raise NowFormatError(one_line(exc)) from exc
    try:
        box = tuple(float(np.asarray(data[k]).reshape(())) for k in
                    ('left', 'top', 'right', 'bottom'))
    except (KeyError, TypeError, ValueError) as exc:
        raise NowFormatError("%s: expected a dict with numbers 'left', 'top', 'right', "
                             "'bottom' (%s)" % (path, one_line(exc))) from exc
    if not (np.all(np.isfinite(box)) and box[2] > box[0] and box[3] > box[1]):
        raise NowFormatError('%s: not a box: left, top, right, bottom = %s' % (path, box))
    return box


def prediction_stem(pred_root, entry):
    """PRED/subject/challenge/name (no extension) of an image-list entry."""
    return os.path.join(pred_root, entry.subject, entry.challenge, entry.name)


def _first_existing(stem, extensions):
    for ext in extensions:
        if os.path.isfile(stem + ext):
            return stem + ext
    return None


def read_landmarks(path):
    """Predicted landmarks .npy (7,3) (or (1,7,3)) or .txt (7 rows 'x y z') -> (7,3)."""
    try:
        if path.endswith('.txt'):
            points = np.loadtxt(path, dtype=np.float64, ndmin=2)
        else:
            points = np.asarray(load_npy(path))
    except OSError as exc:
        raise NowFormatError('%s: cannot read (%s)' % (path, exc.strerror or exc)) from exc
    except (ValueError, PickleFormatError, UnsafePickleError) as exc:
        raise NowFormatError('%s: unreadable landmarks (%s)' % (path, one_line(exc))) from exc
    if points.shape == (1, N_LANDMARKS, 3):  # a batch axis, as the official reader allows
        points = points[0]
    if points.shape != (N_LANDMARKS, 3) or points.dtype.kind not in 'fiu':
        raise NowFormatError('%s: landmarks of shape %s and dtype %s, expected (7, 3) numbers'
                             % (path, points.shape, points.dtype))
    points = points.astype(np.float64)
    if not np.all(np.isfinite(points)):
        raise NowFormatError('%s: landmarks that are not finite' % path)
    return points


def read_prediction(pred_root, entry):
    """(Mesh, landmarks (7,3)) predicted for an image-list entry; NowFormatError (one line,
    naming the file) when either is missing or unusable."""
    stem = prediction_stem(pred_root, entry)
    mesh_path = _first_existing(stem, ('.obj', '.ply'))
    if mesh_path is None:
        raise NowFormatError('%s.obj: no predicted mesh (nor .ply)' % stem)
    lmk_path = _first_existing(stem, ('.npy', '.txt'))
    if lmk_path is None:
        raise NowFormatError('%s.npy: no predicted landmarks (nor .txt)' % stem)
    try:
        mesh = load_mesh(mesh_path)
    except MeshError as exc:
        raise NowFormatError(one_line(exc)) from exc
    if len(mesh.f) == 0:
        raise NowFormatError('%s: a mesh without faces' % mesh_path)
    if not np.all(np.isfinite(mesh.v)):
        raise NowFormatError('%s: vertices that are not finite' % mesh_path)
    return mesh, read_landmarks(lmk_path)
