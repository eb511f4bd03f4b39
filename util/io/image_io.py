"""Read any image file as RGB uint8; write RGB uint8 images atomically with correct colours on disk."""
import os
import struct
import threading
import zlib

import cv2
import numpy as np

from util.io.atomic import atomic_path
from util.io.image_header import ImageHeaderError, apply_orientation, image_info

# Default for --max_pixels: 200 megapixels (e.g. 14000 x 14000) decode to 600 MB of RGB.
MAX_PIXELS = 200_000_000


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


def _png_chunk(kind, data):
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return b''.join((struct.pack('>I', len(data)), kind, data,
                     struct.pack('>I', zlib.crc32(data, zlib.crc32(kind)))))


# cv2's PNG encoder (OpenCV 4 defaults, no parameters given) takes BGR and writes RGB rows
# (libpng's bgr transform), each with the SUB filter, deflated at level 1 with the Z_RLE
# strategy (window 2**15, memLevel 8), the stream cut into IDAT chunks of libpng's 8192-byte
# buffer: IHDR, the IDATs, IEND, nothing else. Python's zlib writes the same bytes without
# the channel-swapped copy and libpng's per-row work -- checked against cv2 itself once per
# process (see _png_matches_cv2); where it differs, cv2 writes every PNG.
_IDAT_SIZE = 8192
# Left to cv2: images of at most 16 kB (libpng lowers the zlib window for them), a stream of
# a whole number of buffers (libpng adds an empty IDAT), 1-pixel-wide images (libpng drops the
# SUB filter for them) and sizes over libpng's default limit of a million pixels a side.
_PNG_MIN_RAW = 16385
_PNG_MAX_SIDE = 1000000


def _png_raw_rows(rgb):
    """(H,W,3) uint8 RGB -> the filtered scanlines (H, 1 + 3W): filter byte 1 (SUB), then each
    byte minus the one 3 before it (mod 256)."""
    height, width = rgb.shape[:2]
    rows = rgb.reshape(height, 3 * width)
    raw = np.empty((height, 3 * width + 1), dtype=np.uint8)
    raw[:, 0] = 1
    raw[:, 1:4] = rows[:, :3]
    np.subtract(rows[:, 3:], rows[:, :-3], out=raw[:, 4:])
    return raw


def _png_bytes(rgb):
    """(H,W,3) uint8 RGB (C-contiguous) -> the bytes of cv2.imencode('.png', rgb[..., ::-1]),
    or None where they could differ (see _PNG_MIN_RAW)."""
    height, width = rgb.shape[:2]
    if (height * (3 * width + 1) < _PNG_MIN_RAW or width < 2
            or max(height, width) > _PNG_MAX_SIDE):
        return None
    deflate = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    stream = deflate.compress(_png_raw_rows(rgb)) + deflate.flush()
    if len(stream) % _IDAT_SIZE == 0:
        return None
    view = memoryview(stream)
    parts = [b'\x89PNG\r\n\x1a\n',
             _png_chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))]
    parts.extend(_png_chunk(b'IDAT', view[i:i + _IDAT_SIZE])
                 for i in range(0, len(stream), _IDAT_SIZE))
    parts.append(_png_chunk(b'IEND', b''))
    return b''.join(parts)


def _png_probe():
    """A 96x128 RGB image with flat areas, gradients, noise and runs across row ends."""
    rng = np.random.default_rng(7)
    probe = np.zeros((96, 128, 3), dtype=np.uint8)
    probe[:32] = rng.integers(0, 256, size=(32, 128, 3), dtype=np.uint8)
    probe[32:64] = (np.arange(128)[:, None] * np.array([1, 2, 3]) % 256).astype(np.uint8)
    probe[64:, 40:90] = (255, 255, 255)
    probe[70:90, :, 1] = rng.integers(0, 4, size=(20, 128), dtype=np.uint8)
    return probe


_png_checked = []  # [bool] once _png_matches_cv2 has run
_png_lock = threading.Lock()


def _png_matches_cv2():
    """Whether _png_bytes writes cv2's bytes here (the same zlib and PNG settings); checked
    once per process on a probe image."""
    if not _png_checked:
        with _png_lock:
            if not _png_checked:
                probe = _png_probe()
                ok, data = cv2.imencode('.png', np.ascontiguousarray(probe[..., ::-1]))
                _png_checked.append(bool(ok) and _png_bytes(probe) == data.tobytes())
    return _png_checked[0]


def encode_image(rgb, ext='.png', name='image'):
    """(H,W,3) uint8 RGB -> the bytes of an image file of type ``ext`` (BGR on disk via cv2,
    i.e. correct colours). ``name`` only labels errors."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageError('%s: expected an (H,W,3) uint8 image, got %s %s'
                         % (name, rgb.shape, rgb.dtype))
    rgb = np.ascontiguousarray(rgb)
    if ext == '.png' and _png_matches_cv2():
        data = _png_bytes(rgb)
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


def write_image(path, rgb):
    """Write (H,W,3) uint8 RGB to ``path`` (format from its extension) atomically."""
    data = encode_image(rgb, os.path.splitext(path)[1], name=path)
    with atomic_path(path) as tmp, open(tmp, 'wb') as fh:
        fh.write(data)
