"""The units RingNet runs on: pictures, the crops (frames) taken from them, and their results.

A ``Picture`` is one image of the input (a photo, or a video frame of a ``Clip``): a photo gets
one 4-panel image, a video frame one frame of the overlay video. Its ``frames`` are the crops
RingNet runs on: the whole image (the original), or one
per detected face. Each frame gets its own mesh, parameters, landmarks and texture.
"""
import collections

Frame = collections.namedtuple('Frame', 'name image box face detection', defaults=(None, None))
Frame.__doc__ = """name: the output NAME (file stem) of this crop's outputs;
image: (H,W,3) uint8 RGB; box: (x0, y0, x1, y1) in image pixels to crop around, or None for the
whole image (the original's crop); face: the face's index in its picture (None: no detection);
detection: the util.face.detect.Face it came from (None: no detection)."""

Picture = collections.namedtuple('Picture', 'name image frames index time_s',
                                 defaults=(None, None))
Picture.__doc__ = """name: the output NAME of the picture's 4-panel image (of its clip, for a
video frame); image: (H,W,3) uint8 RGB; frames: [Frame] cropped from it, all written together
with the panel; index, time_s: a video frame's number in its file and time in seconds (None for
a photo)."""

Prediction = collections.namedtuple('Prediction', 'image proc_param vertices theta')
Prediction.__doc__ = """A frame's result: image (H,W,3) uint8 RGB; proc_param of
util.face.preprocess.preprocess_image; vertices (V,3) float32; theta (T,) float32."""

Clip = collections.namedtuple('Clip', 'name info expected pictures reread')
Clip.__doc__ = """A video being read: name: the NAME of its outputs; info:
util.io.video_io.VideoInfo; expected: how many pictures it should give (0: unknown);
pictures: an iterator of Picture, one per kept video frame, whose frames are the tracks found
in it (Frame.name: the track's NAME, Frame.face: its index; see track_name); reread: () -> a
fresh iterator of the same kept frames as util.io.video_io.VideoFrame (a second pass)."""


def whole_picture(name, image):
    """The original's unit: the picture of ``image`` with one frame, the whole image."""
    return Picture(name, image, [Frame(name, image, None)])


def whole_box(image):
    """(x0, y0, x1, y1) of a whole (H,W,...) image."""
    height, width = image.shape[:2]
    return (0., 0., float(width), float(height))


def crop_box(frame):
    """(x0, y0, x1, y1) a frame is cropped around: its box, or the whole image."""
    return whole_box(frame.image) if frame.box is None else frame.box


def face_box(frame):
    """(x0, y0, x1, y1) of a frame's detected face, or of the whole image without detection."""
    return whole_box(frame.image) if frame.detection is None else frame.detection.box
