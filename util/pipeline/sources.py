"""Sources: turn the command's input into work items, each of which reads into frames.

Today: an image file, or a folder of them. Reading is deferred to ``Item.read`` so a bad file
fails as one item (reported by the pipeline) without stopping the listing or the batch.
"""
import collections
import os

from util.io.image_io import MAX_PIXELS, load_image
from util.pipeline.frames import Frame, output_name

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.gif')

Item = collections.namedtuple('Item', 'source read')
Item.__doc__ = """source: what the user gave (a path), for messages; read: () -> [Frame]."""


def list_inputs(img_path):
    """A file -> [it]; a folder -> its image files, sorted (not recursive), hidden ones skipped."""
    if os.path.isdir(img_path):
        names = sorted(n for n in os.listdir(img_path)
                       if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith('.'))
        return [os.path.join(img_path, n) for n in names]
    return [img_path]


class InputError(ValueError):
    """The command's input names nothing to process; the message is one line."""


def input_paths(img_path):
    """list_inputs, but raise InputError when there is nothing to process (a missing path or
    a folder with no image files), so the command can say so before any model loads."""
    if not os.path.exists(img_path):
        raise InputError('%s: no such image file or folder' % img_path)
    paths = list_inputs(img_path)
    if not paths:
        raise InputError('%s: no image files in this folder' % img_path)
    return paths


def read_image_frames(path, max_pixels=MAX_PIXELS):
    """An image file -> [Frame] of the whole image, named after the file."""
    return [Frame(output_name(path), load_image(path, max_pixels), None)]


def image_items(paths, max_pixels=MAX_PIXELS):
    """Image file paths -> [Item], each reading its file when the pipeline gets to it."""
    return [Item(path, lambda path=path: read_image_frames(path, max_pixels)) for path in paths]
