"""The pipeline's units of work.

A ``Picture`` is one image of the input (a photo, or a video frame of a ``Clip``): a photo gets
one 4-panel image, a video frame one frame of the overlay video. Its ``frames`` are the crops
RingNet runs on: the whole image (the original), or one
per detected face. Each frame gets its own mesh, parameters, landmarks and texture.
"""
import collections
import os

Frame = collections.namedtuple('Frame', 'name image box face detection', defaults=(None, None))
Frame.__doc__ = """name: the output NAME (file stem) of this crop's outputs;
image: (H,W,3) uint8 RGB; box: (x0, y0, x1, y1) in image pixels to crop around, or None for the
whole image (the original's crop); face: the face's index in its picture (None: no detection);
detection: the util.detect.Face it came from (None: no detection)."""

Picture = collections.namedtuple('Picture', 'name image frames index time_s',
                                 defaults=(None, None))
Picture.__doc__ = """name: the output NAME of the picture's 4-panel image (of its clip, for a
video frame); image: (H,W,3) uint8 RGB; frames: [Frame] cropped from it, all written together
with the panel; index, time_s: a video frame's number in its file and time in seconds (None for
a photo)."""

Prediction = collections.namedtuple('Prediction', 'image proc_param vertices theta')
Prediction.__doc__ = """A frame's result: image (H,W,3) uint8 RGB; proc_param of
util.preprocess.preprocess_image; vertices (V,3) float32; theta (T,) float32."""

Clip = collections.namedtuple('Clip', 'name info expected pictures reread')
Clip.__doc__ = """A video being read: name: the NAME of its outputs; info:
util.io.video_io.VideoInfo; expected: how many pictures it should give (0: unknown);
pictures: an iterator of Picture, one per kept video frame, whose frames are the tracks found
in it (Frame.name: the track's NAME, Frame.face: its index; see track_name); reread: () -> a
fresh iterator of the same kept frames as util.io.video_io.VideoFrame (a second pass)."""


def whole_picture(name, image):
    """The original's unit: the picture of ``image`` with one frame, the whole image."""
    return Picture(name, image, [Frame(name, image, None)])


def safe_name(text):
    """``text`` as an output NAME: whitespace, control characters, path separators and bytes
    that are not valid UTF-8 (surrogate escapes in file names) each become '_'.

    NAME is written into OBJ/MTL files (``mtllib NAME.mtl``, ``map_Kd NAME.png``), which
    split on whitespace and lines; names made equal by this mapping are caught as a
    collision by the pipeline, never overwritten.
    """
    return ''.join('_' if ch.isspace() or not ch.isprintable() or ch in '/\\'
                   or '\ud800' <= ch <= '\udfff' else ch for ch in text)


def output_name(path, root=None):
    """The original's NAME for an input path: the file name without its extension (also right
    for '.jpeg', which the original's ``[:-4]`` cut wrongly), made safe (safe_name).

    With ``root`` (a folder read recursively) the sub-folders below ``root`` are kept, each part
    made safe and joined with '/', so 'a/x.jpg' and 'b/x.jpg' get outputs in sub-folders
    'a/x' and 'b/x' instead of colliding.
    """
    stem = os.path.splitext(path)[0]
    parts = (os.path.relpath(stem, root).split(os.sep) if root is not None
             else [os.path.basename(stem)])
    return '/'.join(safe_name(part) for part in parts)


def face_name(name, k):
    """NAME of face ``k`` (numbered from 0) of picture ``name``: NAME_face<k>."""
    return '%s_face%d' % (name, k)


def track_name(name, k, n_tracks):
    """NAME of track ``k`` of clip ``name``: the clip's NAME when it follows one face (or the
    whole frame), NAME_face<k> when it may follow several (--max_faces > 1)."""
    return name if n_tracks <= 1 else face_name(name, k)
