"""The pipeline's unit of work: a frame, i.e. a name and an RGB image (and a crop box)."""
import collections
import os

Frame = collections.namedtuple('Frame', 'name image box')
Frame.__doc__ = """name: the output NAME (file stem) of this frame's outputs;
image: (H,W,3) uint8 RGB; box: (x0, y0, x1, y1) in image pixels to crop around, or None for the
whole image (the original's crop)."""


def output_name(path):
    """The original's NAME for an input path: the file name without its extension (also right
    for '.jpeg', which the original's ``[:-4]`` cut wrongly)."""
    return os.path.splitext(os.path.basename(path))[0]
