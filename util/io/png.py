"""A PNG encoder that writes exactly the bytes of ``cv2.imencode('.png', bgr)`` from RGB, without
the channel-swapped copy (util.io.image_io.encode_image uses it where it is checked to match)."""
import functools
import struct
import zlib

import cv2
import numpy as np


def _png_chunk(kind, data):
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return b''.join((struct.pack('>I', len(data)), kind, data,
                     struct.pack('>I', zlib.crc32(data, zlib.crc32(kind)))))


# cv2's PNG encoder (OpenCV 4 defaults, no parameters given) takes BGR and writes RGB rows
# (libpng's bgr transform), each with the SUB filter, deflated at level 1 with the Z_RLE
# strategy (window 2**15, memLevel 8), the stream cut into IDAT chunks of libpng's 8192-byte
# buffer: IHDR, the IDATs, IEND, nothing else. Python's zlib writes the same bytes without
# the channel-swapped copy and libpng's per-row work -- checked against cv2 itself once per
# process (see matches_cv2); where it differs, cv2 writes every PNG.
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


def png_bytes(rgb):
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


@functools.lru_cache(maxsize=None)  # the zlib and OpenCV of a process do not change
def matches_cv2():
    """Whether png_bytes writes cv2's bytes here (the same zlib and PNG settings); checked
    once per process on a probe image."""
    probe = _png_probe()
    ok, data = cv2.imencode('.png', np.ascontiguousarray(probe[..., ::-1]))
    return bool(ok) and png_bytes(probe) == data.tobytes()
