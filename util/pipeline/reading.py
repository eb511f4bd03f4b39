"""Reading: an input (util.pipeline.inputs.Entry) -> the pictures RingNet runs on.

A photo gives [Picture] (the whole image, or one frame per detected face); a video a Clip (a
stream of pictures, faces followed from frame to frame). Reading is deferred to ``Item.read``,
so a bad file fails as one item (reported by the pipeline) without stopping the batch. A file
is a video when it is not an image (by extension or magic bytes) and OpenCV's FFmpeg opens it.
"""
import collections
import math

from util.face.detect import (AUTO_FRACTION, DEFAULT_MIN_FACE, FaceDetector, min_face_side,
                              select_faces)
from util.face.frames import Clip, Frame, Picture, whole_picture
from util.face.framing import celeba_box
from util.face.tracking import FaceTracker
from util.io.image_header import image_format
from util.io.image_io import MAX_PIXELS, load_image
from util.io.video_io import VideoReader
from util.outputs.naming import face_name, track_name
from util.pipeline.inputs import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, clash_error

Item = collections.namedtuple('Item', 'source read')
Item.__doc__ = """source: what the user gave (a path), for messages; read: () -> [Picture]
(a photo) or a Clip (a video)."""


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
    """[util.face.detect.Face] (numbered in list order) -> [Frame] NAME_face<k> cropped around each
    face's CelebA framing (util.face.framing.celeba_box)."""
    return [Frame(face_name(name, k), image, tuple(celeba_box(face.keypoints)), k, face)
            for k, face in enumerate(faces)]


def detect_pictures(path, name, detector, min_face_size=0, max_faces=0, max_pixels=MAX_PIXELS):
    """An image file -> [Picture] with one frame per detected face (util.face.detect), numbered
    left to right. Raises NoFaceError when none (of at least the minimum size) is found."""
    image = load_image(path, max_pixels)
    min_face = min_face_side(image.shape, min_face_size)
    faces, too_small = select_faces(detector.detect(image, min_face), min_face, max_faces)
    if not faces:
        raise NoFaceError('%s: no face found%s'
                          % (path, no_face_detail(image.shape, min_face_size, min_face, too_small)))
    return [Picture(name, image, face_frames(name, image, faces))]


def no_face_detail(image_shape, min_face_size, min_face, too_small):
    """What 'no face found' adds: the minimum face size when it mattered (faces were smaller,
    or the automatic rule raised it for a large photo) and how to lower it; else ''."""
    raised = not min_face_size and min_face > DEFAULT_MIN_FACE
    if not (too_small or raised):
        return ''
    notes = ['%d smaller' % too_small] if too_small else []
    if raised:
        notes.append('automatic: 1/%d of the photo\'s longer side, %d px; --min_face_size=%d '
                     'looks for faces down to %d px' % (AUTO_FRACTION, max(image_shape[:2]),
                                                        DEFAULT_MIN_FACE, DEFAULT_MIN_FACE))
    else:
        notes.append('see --min_face_size')
    return ' of at least %d px (%s)' % (round(min_face), '; '.join(notes))


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
    util.face.tracking.FaceTracker (--max_faces tracks, 1 when 0), cropped as a photo's face, named
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
    reader = VideoReader(entry.path, config.max_pixels)
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


def work_items(entries, config, clashes=None):
    """[Entry] -> the run's [Item]: photos and videos (read_entry), whole images (the
    original), or the faces found in them (--detect_faces, with --min_face_size and
    --max_faces). clashes: {index: earlier Entry} (see clashing) -> those items fail with one
    line instead of reading, as do entries with an ``error`` (a table row without a path)."""
    detector = FaceDetector() if config.detect_faces else None
    items = [Item(e.path, lambda e=e: read_entry(e, config, detector)) if not e.error else
             Item(e.path, lambda e=e: _refused(ValueError(e.error))) for e in entries]
    for k, other in (clashes or {}).items():
        error = clash_error(other.path, entries[k].name)
        items[k] = Item(entries[k].path, lambda error=error: _refused(error))
    return items
