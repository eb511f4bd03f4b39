"""Read any image file as RGB uint8; write RGB uint8 images atomically with correct colours on disk."""
import os

import cv2
import numpy as np

from util.io.atomic import atomic_path


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


def load_image(path):
    """Read an image file -> (H,W,3) uint8 RGB.

    Grayscale is replicated to three channels; 16-bit samples are scaled to 8 bits
    (x * 255/65535, rounded); float samples are taken as [0, 1]. An alpha channel is
    composited over white (the renderer's background), so transparent cut-outs do not
    turn into whatever colour their hidden pixels happen to hold.
    Raises ImageError (one line, naming the file) for missing/unreadable/empty images.
    """
    if not os.path.isfile(path):
        raise ImageError('%s: no such image file' % path)
    if os.path.getsize(path) == 0:
        raise ImageError('%s: empty file' % path)
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError('%s: not a readable image' % path)
    if img.size == 0:
        raise ImageError('%s: image has zero size %s' % (path, img.shape))
    img = _to_uint8(img, path)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return np.ascontiguousarray(np.repeat(img[..., None], 3, axis=2))
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ImageError('%s: unsupported image layout %s' % (path, img.shape))
    if img.shape[2] == 4:
        img = _over_white(img)
    return np.ascontiguousarray(img[..., ::-1])


def encode_image(rgb, ext='.png', name='image'):
    """(H,W,3) uint8 RGB -> the bytes of an image file of type ``ext`` (BGR on disk via cv2,
    i.e. correct colours). ``name`` only labels errors."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageError('%s: expected an (H,W,3) uint8 image, got %s %s'
                         % (name, rgb.shape, rgb.dtype))
    try:
        ok, data = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]))
    except cv2.error:  # e.g. an extension cv2 has no encoder for
        ok = False
    if not ok:
        raise ImageError('%s: could not encode image as %s' % (name, ext))
    return data.tobytes()


def write_image(path, rgb):
    """Write (H,W,3) uint8 RGB to ``path`` (format from its extension) atomically."""
    data = encode_image(rgb, os.path.splitext(path)[1], name=path)
    with atomic_path(path) as tmp, open(tmp, 'wb') as fh:
        fh.write(data)
