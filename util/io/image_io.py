"""Read any image file as RGB uint8; encode RGB uint8 images with correct colours on disk."""
import os

import cv2
import numpy as np

from util.io import png
from util.io.image_header import ImageHeaderError, apply_orientation, image_info
from util.io.limits import MAX_PIXELS


class ImageError(ValueError):
    """An image file is missing, unreadable, empty or of an unsupported layout."""


def _to_uint8(img, path):
    """Any cv2 sample type -> uint8: 16-bit scaled by 255/65535, float taken as [0, 1]."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return np.round(img * (255.0 / 65535.0)).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        return np.round(np.clip(np.nan_to_num(img), 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ImageError('%s: unsupported sample type %s' % (path, img.dtype))


def _over_white(bgra):
    """(H,W,4) uint8 BGRA -> (H,W,3) uint8 BGR composited over a white background."""
    alpha = bgra[..., 3:].astype(np.float64) / 255.0
    return np.round(bgra[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def read_bytes(path):
    """The bytes of the file at ``path`` (Python's own file I/O: any file name works, even one
    that is not valid UTF-8). Raises ImageError naming the file."""
    if os.path.isdir(path):
        raise ImageError('%s: is a folder, not an image file' % path)
    try:
        with open(path, 'rb') as fh:
            return fh.read()
    except FileNotFoundError:
        raise ImageError('%s: no such image file' % path) from None
    except OSError as exc:
        raise ImageError('%s: cannot read (%s)' % (path, exc.strerror or exc)) from None


def decode_image(data, name='image', max_pixels=MAX_PIXELS):
    """The bytes of an image file -> (H,W,3) uint8 RGB, upright.

    Before decoding, the header is read (util.io.image_header): a picture of more than
    ``max_pixels`` pixels, an unknown format and an evidently truncated file are refused. The
    EXIF orientation tag is applied, as photo viewers do. Grayscale is replicated to three
    channels; 16-bit samples are scaled to 8 bits (x * 255/65535, rounded); float samples are
    taken as [0, 1]. An alpha channel is composited over white (the renderer's background),
    so transparent cut-outs do not turn into whatever colour their hidden pixels hold.
    Raises ImageError (one line, naming ``name``).
    """
    if not data:
        raise ImageError('%s: empty file' % name)
    try:
        info = image_info(data)
    except ImageHeaderError as exc:
        raise ImageError('%s: not a readable image (%s)' % (name, exc)) from None
    if info.width * info.height > max_pixels:
        raise ImageError('%s: %dx%d image has %d pixels, over the limit of %d (--max_pixels)'
                         % (name, info.width, info.height, info.width * info.height,
                            max_pixels))
    if not info.complete:
        raise ImageError('%s: truncated %s file (its end is missing)' % (name, info.format))
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageError('%s: not a readable image (the %s decoder failed)' % (name, info.format))
    img = _to_uint8(img, name)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    elif img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ImageError('%s: unsupported image layout %s' % (name, img.shape))
    else:
        if img.shape[2] == 4:
            img = _over_white(img)
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=img)  # in place: no second copy
    return apply_orientation(img, info.orientation)


def load_image(path, max_pixels=MAX_PIXELS):
    """Read an image file -> (H,W,3) uint8 RGB, upright (see decode_image)."""
    return decode_image(read_bytes(path), path, max_pixels)


def encode_image(rgb, ext='.png', name='image'):
    """(H,W,3) uint8 RGB -> the bytes of an image file of type ``ext`` (BGR on disk via cv2,
    i.e. correct colours). ``name`` only labels errors."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageError('%s: expected an (H,W,3) uint8 image, got %s %s'
                         % (name, rgb.shape, rgb.dtype))
    rgb = np.ascontiguousarray(rgb)
    if ext == '.png' and png.matches_cv2():
        data = png.png_bytes(rgb)
        if data is not None:
            return data
    # cv2 wants BGR: cvtColor swaps far faster than a copy of rgb[..., ::-1]
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.size else rgb[..., ::-1].copy()
    try:
        ok, data = cv2.imencode(ext, bgr)
    except cv2.error:  # e.g. an extension cv2 has no encoder for
        ok = False
    if not ok:
        raise ImageError('%s: could not encode image as %s' % (name, ext))
    return data.tobytes()
