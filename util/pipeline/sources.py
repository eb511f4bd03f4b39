"""Sources: turn the command's input into work items, each of which reads into pictures.

The input is an image or video file, a folder (``recursive``: with its sub-folders), a glob
pattern, or a ``.txt`` list with one path per line. Reading is deferred to ``Item.read`` so a
bad file fails as one item (reported by the pipeline) without stopping the listing or the batch.
A file is a video when it is not an image (by extension or magic bytes) and OpenCV's FFmpeg
opens it; folders and patterns list files with the extensions of either.
"""
import collections
import csv
import glob
import os

import math

from util.detect import FaceDetector, min_face_side, select_faces
from util.framing import celeba_box
from util.io.image_header import image_format
from util.io.image_io import MAX_PIXELS, load_image
from util.io.video_io import VideoReader
from util.pipeline.frames import (Clip, Frame, Picture, face_name, output_name, track_name,
                                  whole_picture)
from util.tracking import FaceTracker

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.gif')
VIDEO_EXTENSIONS = ('.mp4', '.mov', '.avi', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg', '.wmv',
                    '.flv', '.3gp', '.ts', '.mts', '.m2ts', '.ogv', '.mxf', '.y4m')
LIST_EXTENSION = '.txt'
TABLE_EXTENSIONS = ('.csv', '.parquet')  # a table with a 'path' column (else its first)
GLOB_CHARACTERS = '*?['

Item = collections.namedtuple('Item', 'source read')
Item.__doc__ = """source: what the user gave (a path), for messages; read: () -> [Picture]
(a photo) or a Clip (a video)."""

Entry = collections.namedtuple('Entry', 'path name')
Entry.__doc__ = """One input: its path, and the output NAME its outputs get."""


class InputError(ValueError):
    """The command's input names nothing to process; the message is one line."""


def _is_input(name):
    """A file a folder or pattern lists: an image or video extension, not hidden."""
    return name.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS) and not name.startswith('.')


def _inside(path, folder):
    """True when ``path`` is ``folder`` or below it (both resolved)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _folder_entries(folder, recursive, exclude=None):
    """Image and video files of ``folder`` (sorted; hidden files and folders, and the folder
    ``exclude`` (the output folder) skipped) -> [Entry]."""
    if not recursive:
        names = sorted(n for n in os.listdir(folder) if _is_input(n))
        return [Entry(os.path.join(folder, n), output_name(n)) for n in names]
    entries = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith('.') and not (
            exclude and _inside(os.path.join(dirpath, d), exclude)))
        entries += [Entry(os.path.join(dirpath, n), output_name(os.path.join(dirpath, n), folder))
                    for n in sorted(filenames) if _is_input(n)]
    return entries


def _list_file_entries(list_path):
    """A .txt list: one path per line; blank lines and lines starting with '#' skipped;
    relative paths are relative to the list file's folder. Missing paths are kept (each
    fails as its own item)."""
    try:
        # utf-8-sig: lists saved by Windows editors start with a byte-order mark
        with open(list_path, encoding='utf-8-sig', errors='surrogateescape') as fh:
            lines = [line.strip() for line in fh]
    except OSError as e:
        raise InputError('%s: cannot read this list file (%s)' % (list_path, e.strerror)) from e
    return _relative_entries(list_path, [line for line in lines
                                         if line and not line.startswith('#')])


def _relative_entries(list_path, paths):
    """[Entry] of the paths a list file names, relative ones taken from its folder."""
    base = os.path.dirname(list_path)
    return [Entry(os.path.join(base, p), output_name(os.path.join(base, p))) for p in paths]


def _table_paths(table_path):
    """The paths of a .csv (with a header row) or .parquet table: its 'path' column, else
    its first column."""
    try:
        if table_path.lower().endswith('.csv'):
            with open(table_path, newline='', encoding='utf-8-sig',
                      errors='surrogateescape') as fh:
                rows = list(csv.reader(fh))
            header, rows = (rows[0], rows[1:]) if rows else ([], [])
            column = header.index('path') if 'path' in header else 0
            return [row[column] for row in rows if len(row) > column]
        import pyarrow.parquet  # only a Parquet list needs it (requirements-ray.txt has it)
        table = pyarrow.parquet.read_table(table_path)
        name = 'path' if 'path' in table.column_names else table.column_names[0]
        return [str(p) for p in table.column(name).to_pylist() if p is not None]
    except ImportError as e:
        raise InputError('%s: reading a Parquet list needs pyarrow (pip install -r '
                         'requirements-ray.txt)' % table_path) from e
    except (OSError, ValueError, IndexError) as e:
        raise InputError('%s: cannot read this list of paths (%s)'
                         % (table_path, str(e).splitlines()[0] if str(e) else
                            type(e).__name__)) from e


def _glob_root(pattern):
    """The folders of ``pattern`` before its first glob character ('photos/**/*.jpg' ->
    'photos'): matches keep their sub-folders below it in their NAME, as with --recursive."""
    parts = pattern.split(os.sep)
    fixed = next(i for i, part in enumerate(parts) if any(ch in part for ch in GLOB_CHARACTERS))
    return os.sep.join(parts[:fixed]) or ('.' if not os.path.isabs(pattern) else os.sep)


def input_entries(img_path, recursive=False, exclude=None):
    """The command's input -> [Entry] to process, in order.

    A folder gives its image and video files; a ``.txt`` file its listed paths (a ``.csv`` or
    ``.parquet`` table those of its 'path' column, else of its first); a path that does not
    exist but contains a glob character (* ? [) the image and video files it matches (``**``
    spans folders); any other file is one input. Files inside ``exclude`` (the output folder)
    are left out of folders and patterns. Raises InputError (one line) when there is nothing to
    process, so the command can say so before any model loads.
    """
    if os.path.isdir(img_path):
        entries = _folder_entries(img_path, recursive, exclude)
        if not entries:
            raise InputError('%s: no image or video files in this folder%s'
                             % (img_path, '' if recursive else ' (--recursive looks in '
                                'sub-folders)'))
        return entries
    if os.path.isfile(img_path):
        if img_path.lower().endswith((LIST_EXTENSION,) + TABLE_EXTENSIONS):
            entries = (_list_file_entries(img_path) if img_path.lower().endswith(LIST_EXTENSION)
                       else _relative_entries(img_path, _table_paths(img_path)))
            if not entries:
                raise InputError('%s: this list file names no inputs' % img_path)
            return entries
        return [Entry(img_path, output_name(img_path))]
    if any(ch in img_path for ch in GLOB_CHARACTERS):
        root = _glob_root(img_path)
        matches = sorted(p for p in glob.glob(img_path, recursive=True)
                         if os.path.isfile(p) and _is_input(os.path.basename(p))
                         and not (exclude and _inside(p, exclude)))
        if not matches:
            raise InputError('%s: no image or video file matches this pattern' % img_path)
        return [Entry(p, output_name(p, root)) for p in matches]
    raise InputError('%s: no such file or folder' % img_path)


def clashing(entries):
    """{index: earlier Entry} for each entry whose NAME an earlier entry already has ('a.jpg'
    and 'a.png' both write images/a.png): those are refused, never overwritten."""
    first, clashes = {}, {}
    for k, entry in enumerate(entries):
        other = first.setdefault(entry.name, entry)
        if other is not entry:
            clashes[k] = other
    return clashes


def clash_error(other, name):
    """The error of an input whose outputs would overwrite those of ``other``."""
    return ValueError('outputs would overwrite those of %s (same name %s)' % (other, name))


def _refused(error):
    raise error


def is_image_file(path):
    """True when ``path`` is read as a photo: an image extension, or image magic bytes. A
    path that cannot be read (missing, a folder) goes by its extension alone, so the reader
    that names the problem is the one the user expects."""
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return True
    try:
        with open(path, 'rb') as fh:
            return image_format(fh.read(16)) is not None
    except OSError:
        return not path.lower().endswith(VIDEO_EXTENSIONS)


def read_image_pictures(path, name, max_pixels=MAX_PIXELS):
    """An image file -> [Picture] of the whole image (the original's crop)."""
    return [whole_picture(name, load_image(path, max_pixels))]


class NoFaceError(ValueError):
    """No face (of the minimum size) was found in an image."""


def face_frames(name, image, faces):
    """[util.detect.Face] (numbered in list order) -> [Frame] NAME_face<k> cropped around each
    face's CelebA framing (util.framing.celeba_box)."""
    return [Frame(face_name(name, k), image, tuple(celeba_box(face.keypoints)), k, face)
            for k, face in enumerate(faces)]


def detect_pictures(path, name, detector, min_face_size=0, max_faces=0, max_pixels=MAX_PIXELS):
    """An image file -> [Picture] with one frame per detected face (util.detect), numbered
    left to right. Raises NoFaceError when none (of at least the minimum size) is found."""
    image = load_image(path, max_pixels)
    min_face = min_face_side(image.shape, min_face_size)
    faces, too_small = select_faces(detector.detect(image, min_face), min_face, max_faces)
    if not faces:
        raise NoFaceError('%s: no face found%s' % (path, (
            ' of at least %d px (%d smaller; see --min_face_size)' % (min_face, too_small))
            if too_small else ''))
    return [Picture(name, image, face_frames(name, image, faces))]


def expected_frames(frame_count, every_n=1, max_frames=0):
    """How many frames a clip of ``frame_count`` frames gives with --every_n_frames and
    --max_frames (0 when the count is unknown and there is no maximum)."""
    kept = math.ceil(frame_count / every_n) if frame_count else 0
    return min(kept, max_frames) if max_frames and kept else (kept or max_frames)


def clip_pictures(reader, name, every_n=1, max_frames=0, detector=None, min_face_size=0,
                  max_faces=0):
    """Decode a util.io.video_io.VideoReader as a stream of Picture, one per kept frame, and
    close it at the end. Without a detector each has one Frame, the whole image (the
    original's crop), named ``name``; with one, a Frame per face followed by
    util.tracking.FaceTracker (--max_faces tracks, 1 when 0), cropped as a photo's face, named
    by track_name. A frame where no track is found has no frames."""
    n_tracks = max(1, max_faces)
    tracker = FaceTracker(n_tracks)
    with reader:
        for video_frame in reader.frames(every_n, max_frames):
            image = video_frame.image
            if detector is None:
                frames = [Frame(name, image, None)]
            else:
                min_face = min_face_side(image.shape, min_face_size)
                faces, _ = select_faces(detector.detect(image, min_face), min_face, 0)
                frames = [Frame(track_name(name, k, n_tracks), image,
                                tuple(celeba_box(face.keypoints)), k, face)
                          for k, face in sorted(tracker.update(faces).items())]
            yield Picture(name, image, frames, video_frame.index, video_frame.time_s)


def read_entry(entry, config, detector=None):
    """Read one input: [Picture] for a photo, a Clip for a video (see is_image_file)."""
    if is_image_file(entry.path):
        if detector is None:
            return read_image_pictures(entry.path, entry.name, config.max_pixels)
        return detect_pictures(entry.path, entry.name, detector, config.min_face_size,
                               config.max_faces, config.max_pixels)
    reader = VideoReader(entry.path)
    every_n, max_frames = config.every_n_frames, config.max_frames
    return Clip(entry.name, reader.info,
                expected_frames(reader.info.frame_count, every_n, max_frames),
                clip_pictures(reader, entry.name, every_n, max_frames, detector,
                              config.min_face_size, config.max_faces),
                lambda: video_frames(entry.path, every_n, max_frames))


def video_frames(path, every_n=1, max_frames=0):
    """The kept frames of a video file again (util.io.video_io.VideoFrame), for a second
    pass; the file is closed at the end."""
    with VideoReader(path) as reader:
        yield from reader.frames(every_n, max_frames)


def image_items(entries, max_pixels=MAX_PIXELS):
    """[Entry] (or plain paths) of images -> [Item], each reading its file when the pipeline
    gets to it."""
    entries = [e if isinstance(e, Entry) else Entry(e, output_name(e)) for e in entries]
    return [Item(e.path, lambda e=e: read_image_pictures(e.path, e.name, max_pixels))
            for e in entries]


def work_items(entries, config, clashes=None):
    """[Entry] -> the run's [Item]: photos and videos (read_entry), whole images (the
    original), or the faces found in them (--detect_faces, with --min_face_size and
    --max_faces). clashes: {index: earlier Entry} (see clashing) -> those items fail with one
    line instead of reading."""
    detector = FaceDetector() if config.detect_faces else None
    items = [Item(e.path, lambda e=e: read_entry(e, config, detector)) for e in entries]
    for k, other in (clashes or {}).items():
        error = clash_error(other.path, entries[k].name)
        items[k] = Item(entries[k].path, lambda error=error: _refused(error))
    return items
