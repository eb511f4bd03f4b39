"""The NoW benchmark's images as the command's input (--now_dataset, --now_split;
docs/formats.md §17): one Entry per line of the split's image list, NAME
subject/challenge/name, and how each is framed.

Framing: the face is searched (util.face.detect) in NoW's face box grown by SEARCH_MARGIN on
every side, and the face whose box centre lies in NoW's box (the largest overlap) is framed
exactly as --detect_faces frames a face (util.face.framing.celeba_box of its keypoints). When
no face is found there, NoW's box itself is framed (util.face.framing.box_framing) and the
input is noted in ``fallbacks`` (the command's summary counts them).
"""
import numpy as np

from util.face.detect import FaceDetector, min_face_side, select_faces
from util.face.frames import Frame, Picture
from util.face.framing import box_framing, celeba_box, face_in_box
from util.io.image_io import MAX_PIXELS, load_image
from util.now.files import (ImageEntry, box_path, image_list_path, image_path, read_box,
                            read_image_list)
from util.pipeline.inputs import Entry, clash_error
from util.pipeline.reading import Item

SEARCH_MARGIN = 0.5  # the detector sees NoW's box plus half its size on each side


def now_entries(root, split):
    """The split's image list -> [Entry(image path, 'subject/challenge/name')] (NowFormatError,
    one line, when the list is missing or malformed)."""
    return [Entry(image_path(root, e), '%s/%s/%s' % (e.subject, e.challenge, e.name))
            for e in read_image_list(image_list_path(root, split))]


def _entry_of(name):
    """The image-list entry behind a NAME (subject/challenge/name)."""
    subject, challenge, stem = name.split('/')
    return ImageEntry(name, subject, challenge, stem)


def search_region(box, shape):
    """NoW's box (x0, y0, x1, y1), image shape -> the integer region (x0, y0, x1, y1) the
    detector looks at: the box grown by SEARCH_MARGIN per side, clipped to the image."""
    w, h = box[2] - box[0], box[3] - box[1]
    x0 = int(max(0, np.floor(box[0] - SEARCH_MARGIN * w)))
    y0 = int(max(0, np.floor(box[1] - SEARCH_MARGIN * h)))
    x1 = int(min(shape[1], np.ceil(box[2] + SEARCH_MARGIN * w)))
    y1 = int(min(shape[0], np.ceil(box[3] + SEARCH_MARGIN * h)))
    return x0, y0, x1, y1


def now_frame(name, image, box, detector, min_face_size=0):
    """One NoW image -> (Frame, found): the face found in NoW's box, framed as --detect_faces
    frames it (found True), or NoW's box framed by box_framing (found False)."""
    x0, y0, x1, y1 = search_region(box, image.shape)
    region = image[y0:y1, x0:x1]
    faces = []
    if region.size:
        min_face = min_face_side(region.shape, min_face_size)
        faces, _ = select_faces(detector.detect(np.ascontiguousarray(region), min_face),
                                min_face)
    shift = np.array([x0, y0], dtype=np.float64)
    faces = [f._replace(box=np.asarray(f.box, dtype=np.float64) + np.tile(shift, 2),
                        keypoints=np.asarray(f.keypoints, dtype=np.float64) + shift)
             for f in faces]
    face = face_in_box(faces, box)
    if face is None:
        return Frame(name, image, tuple(box_framing(box)), None, None), False
    return Frame(name, image, tuple(celeba_box(face.keypoints)), 0, face), True


def read_now_pictures(root, entry, detector, min_face_size=0, max_pixels=MAX_PIXELS,
                      fallbacks=None):
    """A NoW entry -> [Picture] of its image with one frame (now_frame); the entry's path
    is appended to ``fallbacks`` when NoW's box had to be framed itself."""
    image = load_image(entry.path, max_pixels)
    box = read_box(box_path(root, _entry_of(entry.name)))
    frame, found = now_frame(entry.name, image, box, detector, min_face_size)
    if not found and fallbacks is not None:
        fallbacks.append(entry.path)
    return [Picture(entry.name, image, [frame])]


def now_work_items(entries, config, clashes=None, fallbacks=None):
    """[Entry] of now_entries -> the run's [Item] (as util.pipeline.reading.work_items), each
    read and framed by read_now_pictures."""
    detector = FaceDetector()
    root = config.now_dataset
    items = [Item(e.path, lambda e=e: read_now_pictures(
        root, e, detector, config.min_face_size, config.max_pixels, fallbacks))
        for e in entries]
    for k, other in (clashes or {}).items():
        error = clash_error(other.path, entries[k].name)
        items[k] = Item(entries[k].path, lambda error=error: _raise(error))
    return items


def _raise(error):
    raise error


def is_now_run(config):
    """True when the command's input is NoW's image list (--now_dataset)."""
    return bool(getattr(config, 'now_dataset', ''))

