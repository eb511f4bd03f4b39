"""The pipeline's unit of work: a frame, i.e. a name and an RGB image (and a crop box)."""
import collections
import os

Frame = collections.namedtuple('Frame', 'name image box')
Frame.__doc__ = """name: the output NAME (file stem) of this frame's outputs;
image: (H,W,3) uint8 RGB; box: (x0, y0, x1, y1) in image pixels to crop around, or None for the
whole image (the original's crop)."""


def safe_name(text):
    """``text`` as an output NAME: whitespace, control characters, path separators and bytes
    that are not valid UTF-8 (surrogate escapes in file names) each become '_'.

    NAME is written into OBJ/MTL files (``mtllib NAME.mtl``, ``map_Kd NAME.png``), which
    split on whitespace and lines; names made equal by this mapping are caught as a
    collision by the pipeline, never overwritten.
    """
    return ''.join('_' if ch.isspace() or not ch.isprintable() or ch in '/\\'
                   or '\ud800' <= ch <= '\udfff' else ch for ch in text)


def output_name(path):
    """The original's NAME for an input path: the file name without its extension (also right
    for '.jpeg', which the original's ``[:-4]`` cut wrongly), made safe (safe_name)."""
    return safe_name(os.path.splitext(os.path.basename(path))[0])
