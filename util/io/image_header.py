"""Inspect the raw bytes of an image file without decoding pixels.

Used before a decoder sees a file: gives the format, the size (so decompression bombs can be
refused before any pixel memory is allocated), the EXIF orientation (so phone photos can be
turned upright) and whether the file is evidently truncated (decoders such as libjpeg fill a
cut-off scan with grey and report success).

Pure Python + numpy; imports nothing of this project. Every parse is bounded by the length of
the data, never by a value read from it, so bogus headers cannot make it loop or allocate.

Over 300 lines on purpose: one small parser per image format (JPEG, PNG, GIF, BMP, TIFF,
WebP, EXIF inside them), sharing the same bounded readers; split, they would share private
helpers across files.
"""
import re
import struct
from collections import namedtuple

import numpy as np

__all__ = ['ImageHeaderError', 'ImageInfo', 'image_format', 'image_info', 'apply_orientation']


class ImageHeaderError(ValueError):
    """The data is not a recognised image, or its header is cut or malformed.

    The message is a short reason without a file name; the caller adds the name."""


ImageInfo = namedtuple('ImageInfo', 'format width height orientation complete')
ImageInfo.__doc__ = """What the header of an image file says.

format: str, one of 'jpeg', 'png', 'gif', 'bmp', 'webp', 'tiff'.
width, height: int > 0, of the first image of multi-page/animated files (GIF/WebP: the canvas).
orientation: int 1..8, the EXIF Orientation tag (1 when absent or invalid).
complete: bool, False when the file is evidently truncated."""


# ----------------------------------------------------------------------------- small helpers

def _u16be(data, pos):
    return (data[pos] << 8) | data[pos + 1]


def _unpack(fmt, data, pos):
    """struct.unpack_from that reports data too short for a header field as ImageHeaderError."""
    if pos < 0 or pos + struct.calcsize(fmt) > len(data):
        raise ImageHeaderError('truncated header')
    return struct.unpack_from(fmt, data, pos)


def _check_size(width, height):
    if width <= 0 or height <= 0:
        raise ImageHeaderError('invalid dimensions %dx%d' % (width, height))
    return int(width), int(height)


def _valid_orientation(value):
    return int(value) if 1 <= value <= 8 else 1


# ----------------------------------------------------------------------------- TIFF / EXIF

# Byte size of each TIFF field type; numpy codes of the unsigned integer types we read values of
# (BYTE, SHORT, LONG, IFD, LONG8, IFD8). Unknown types are skipped, as the TIFF spec asks.
_TIFF_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
              13: 4, 16: 8, 17: 8, 18: 8}
_TIFF_UINT = {1: 'u1', 3: 'u2', 4: 'u4', 13: 'u4', 16: 'u8', 18: 'u8'}
_MAX_IFD_ENTRIES = 4096  # libtiff's sanity limit; real IFDs hold a few dozen tags


def _tiff_ifd0(data):
    """TIFF structure (a TIFF file, or the payload of an EXIF block) -> its first IFD.

    Returns (byte order '<' or '>', {tag: (type, count, value position)}, intact) where intact
    is False when the IFD or any of its out-of-line values lies past the end of ``data``.
    Classic TIFF and BigTIFF. Raises ImageHeaderError when there is no readable IFD at all.
    """
    if len(data) < 8:
        raise ImageHeaderError('truncated header')
    order = {b'II': '<', b'MM': '>'}.get(bytes(data[:2]))
    if order is None:
        raise ImageHeaderError('bad TIFF byte order')
    magic, = _unpack(order + 'H', data, 2)
    if magic == 42:
        ifd, = _unpack(order + 'I', data, 4)
        count_fmt, entry_size, value_size, header_end = 'H', 12, 4, 8
    elif magic == 43:  # BigTIFF: 8-byte offsets and counts
        offset_size, ifd = _unpack(order + 'H2xQ', data, 4)
        if offset_size != 8:
            raise ImageHeaderError('bad BigTIFF header')
        count_fmt, entry_size, value_size, header_end = 'Q', 20, 8, 16
    else:
        raise ImageHeaderError('bad TIFF magic number')
    n = len(data)
    if ifd < header_end:
        raise ImageHeaderError('bad IFD offset')
    count_size = struct.calcsize(count_fmt)
    if ifd + count_size > n:
        raise ImageHeaderError('truncated header (IFD past the end)')
    count, = struct.unpack_from(order + count_fmt, data, ifd)
    if count > _MAX_IFD_ENTRIES:
        raise ImageHeaderError('implausible IFD entry count %d' % count)
    start = ifd + count_size
    # The whole IFD includes the offset of the next IFD after its entries.
    intact = start + count * entry_size + value_size <= n
    entry_fmt = order + ('HHI' if value_size == 4 else 'HHQ')
    value_fmt = order + ('I' if value_size == 4 else 'Q')
    entries = {}
    for pos in range(start, min(start + count * entry_size, n - entry_size + 1), entry_size):
        tag, typ, cnt = struct.unpack_from(entry_fmt, data, pos)
        size = _TIFF_SIZE.get(typ)
        if size is None:
            continue
        field = pos + 4 + value_size  # tag, type, count, then the value (or its offset)
        if cnt * size <= value_size:
            where = field
        else:
            where, = struct.unpack_from(value_fmt, data, field)
            if where + cnt * size > n:
                intact = False
        entries.setdefault(tag, (typ, cnt, where))
    return order, entries, intact


def _tiff_values(data, order, entry):
    """(type, count, position) of an integer field -> (count,) unsigned ndarray (a view), or
    None for a non-integer type or values past the end of data."""
    typ, count, where = entry
    code = _TIFF_UINT.get(typ)
    if code is None or where + count * _TIFF_SIZE[typ] > len(data):
        return None
    if count == 0:
        return np.zeros(0, np.uint64)
    return np.frombuffer(data, order + code, count, where)


def _tiff_first(data, order, entries, tag):
    """First integer value of ``tag`` in the IFD, or None."""
    values = _tiff_values(data, order, entries[tag]) if tag in entries else None
    return int(values[0]) if values is not None and len(values) else None


def _exif_orientation(payload):
    """EXIF block ('Exif\\0\\0' prefix optional, then a TIFF structure) -> orientation 1..8.

    A damaged EXIF block never makes the image unreadable: it just gives 1."""
    if payload[:6] == b'Exif\x00\x00':
        payload = payload[6:]
    try:
        order, entries, _ = _tiff_ifd0(payload)
    except ImageHeaderError:
        return 1
    value = _tiff_first(payload, order, entries, 0x0112)
    return _valid_orientation(value) if value is not None else 1


def _tiff_info(data):
    order, entries, intact = _tiff_ifd0(data)
    width = _tiff_first(data, order, entries, 256)
    height = _tiff_first(data, order, entries, 257)
    if width is None or height is None:
        raise ImageHeaderError('truncated header' if not intact else 'no image dimensions')
    width, height = _check_size(width, height)
    orientation = _valid_orientation(_tiff_first(data, order, entries, 0x0112) or 1)
    # Strips (273/279) or tiles (324/325): every block must lie inside the data.
    offsets_tag, counts_tag = (273, 279) if 273 in entries else (324, 325)
    if offsets_tag not in entries:
        if not intact:
            raise ImageHeaderError('truncated header')
        raise ImageHeaderError('no strip or tile offsets')
    complete = intact
    offsets = _tiff_values(data, order, entries[offsets_tag])
    counts = _tiff_values(data, order, entries[counts_tag]) if counts_tag in entries else None
    n = np.uint64(len(data))
    if offsets is None or not len(offsets):
        complete = False
    else:
        offsets = offsets.astype(np.uint64)
        if not np.all(offsets <= n):
            complete = False
        elif counts is not None:  # byte counts missing (old writers): offsets alone are checked
            k = min(len(offsets), len(counts))
            complete = complete and bool(np.all(counts[:k].astype(np.uint64) <= n - offsets[:k]))
    return ImageInfo('tiff', width, height, orientation, complete)


# ----------------------------------------------------------------------------- JPEG

# A marker at this position, after optional 0xFF fill bytes.
_MARKER_AT = re.compile(rb'\xff+([^\xff])')
# The next marker in entropy-coded data: 0xFF there is byte-stuffed as FF00, and the restart
# markers FFD0..FFD7 belong to the scan.
_NEXT_MARKER = re.compile(rb'\xff[^\x00\xd0-\xd7\xff]')
_STANDALONE = frozenset([0x01] + list(range(0xD0, 0xD9)))  # TEM, RSTn, SOI: no length field
_SOF = frozenset(set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC})  # not DHT, JPG, DAC


def _jpeg_info(data):
    """Walk the marker segments by their lengths (so an EXIF thumbnail inside APP1, with its own
    SOS/EOI, is skipped); after each SOS scan the entropy-coded data for the next marker.
    Complete when EOI follows the (last) scan; progressive files have several scans."""
    n = len(data)
    pos = 2
    size = None
    orientation = None
    seen_scan = False
    while True:
        m = _MARKER_AT.match(data, pos)
        if m is None or m.group(1) == b'\x00':
            if pos >= n or data.count(b'\xff', pos) == n - pos:
                break  # only fill bytes left: cut off
            # Garbage between segments: skip to the next marker, as libjpeg does.
            nxt = _NEXT_MARKER.search(data, pos + 1)
            if nxt is None:
                break
            pos = nxt.start()
            continue
        marker = m.group(1)[0]
        pos = m.end()
        if marker == 0xD9:  # EOI
            if size is None:
                raise ImageHeaderError('no frame header')
            # EOI before any scan: a tables-only stream, there is no image data.
            return ImageInfo('jpeg', size[0], size[1], orientation or 1, seen_scan)
        if marker in _STANDALONE:
            continue
        if pos + 2 > n:
            break
        length = _u16be(data, pos)
        if length < 2:
            raise ImageHeaderError('malformed marker segment length')
        end = pos + length
        if end > n:
            break
        if marker in _SOF and size is None:
            if length < 8:
                raise ImageHeaderError('malformed frame header')
            height, width = _u16be(data, pos + 3), _u16be(data, pos + 5)
            if height == 0:
                raise ImageHeaderError('frame height defined later (DNL) not supported')
            size = _check_size(width, height)
        elif marker == 0xE1 and orientation is None and data[pos + 2:pos + 8] == b'Exif\x00\x00':
            orientation = _exif_orientation(data[pos + 8:end])
        elif marker == 0xDA:  # SOS
            if size is None:
                raise ImageHeaderError('no frame header before scan')
            seen_scan = True
            nxt = _NEXT_MARKER.search(data, end)
            if nxt is None:
                break  # scan data runs to the end of the file: cut off
            pos = nxt.start()
            continue
        pos = end
    if size is None:
        raise ImageHeaderError('truncated header (no frame header)')
    return ImageInfo('jpeg', size[0], size[1], orientation or 1, False)


# ----------------------------------------------------------------------------- PNG

def _png_info(data):
    """IHDR gives the size; chunks are walked by their lengths up to IEND."""
    n = len(data)
    if n < 33:
        raise ImageHeaderError('truncated header')
    length, ctype, width, height = struct.unpack_from('>I4sII', data, 8)
    if ctype != b'IHDR' or length != 13:
        raise ImageHeaderError('no IHDR chunk')
    if width > 0x7FFFFFFF or height > 0x7FFFFFFF:
        raise ImageHeaderError('invalid dimensions %dx%d' % (width, height))
    width, height = _check_size(width, height)
    orientation = None
    complete = False
    pos = 8
    while pos + 8 <= n:
        length, ctype = struct.unpack_from('>I4s', data, pos)
        if length > 0x7FFFFFFF or not ctype.isalpha():
            raise ImageHeaderError('corrupt chunk at byte %d' % pos)
        end = pos + 12 + length  # length, type, data, CRC
        if end > n:
            break
        if ctype == b'IEND':
            complete = True
            break
        if ctype == b'eXIf' and orientation is None:
            orientation = _exif_orientation(data[pos + 8:pos + 8 + length])
        pos = end
    return ImageInfo('png', width, height, orientation or 1, complete)


# ----------------------------------------------------------------------------- GIF

def _gif_skip_sub_blocks(data, pos):
    """Position after a chain of data sub-blocks ending in a 0 length, or None if cut off."""
    n = len(data)
    while pos < n:
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos
    return None


def _gif_info(data):
    """The logical screen size; complete when the block structure reaches the 0x3B trailer."""
    width, height, flags = _unpack('<HHB', data, 6)
    width, height = _check_size(width, height)
    n = len(data)
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # global colour table
    complete = False
    while pos is not None and pos < n:
        block = data[pos]
        if block == 0x3B:  # trailer
            complete = True
            break
        if block == 0x21:  # extension: introducer, label, sub-blocks
            pos = _gif_skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor (10 bytes), local colour table, LZW code size
            if pos + 10 > n:
                break
            flags = data[pos + 9]
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
            pos = _gif_skip_sub_blocks(data, pos)
        else:
            # Unknown block: no structure to follow; fall back to "the last byte that is not
            # zero padding is the trailer".
            complete = data.rstrip(b'\x00')[-1:] == b';'
            break
    return ImageInfo('gif', width, height, 1, complete)


# ----------------------------------------------------------------------------- BMP

_BMP_HEADER_SIZES = (12, 16, 40, 52, 56, 64, 108, 124)


def _bmp_info(data):
    """Complete when the data holds bfOffBits + the pixel array the header implies."""
    n = len(data)
    file_size, pixel_offset, header_size = _unpack('<I4xII', data, 2)
    if header_size not in _BMP_HEADER_SIZES:
        raise ImageHeaderError('unsupported BMP header size %d' % header_size)
    if header_size == 12:  # OS/2 1.x BITMAPCOREHEADER: 16-bit unsigned size
        width, height, _, bits = _unpack('<HHHH', data, 18)
        compression = image_size = 0
    else:
        width, height, _, bits = _unpack('<iiHH', data, 18)
        compression, = _unpack('<I', data, 30) if header_size >= 20 else (0,)
        image_size, = _unpack('<I', data, 34) if header_size >= 24 else (0,)
    width, height = _check_size(width, abs(height))  # negative height: rows stored top-down
    if pixel_offset < 14 + header_size:
        raise ImageHeaderError('bad pixel data offset')
    # BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS are raw pixels (but 3 and 4 are Huffman and RLE24
    # in OS/2 2.x headers).
    raw = compression == 0 or (compression in (3, 6) and header_size not in (16, 64))
    if raw:
        if bits not in (1, 2, 4, 8, 16, 24, 32, 64):
            raise ImageHeaderError('unsupported bit count %d' % bits)
        row = (width * bits + 31) // 32 * 4  # rows are padded to 4 bytes
        complete = n >= pixel_offset + row * height
    elif image_size:
        complete = n >= pixel_offset + image_size
    elif file_size > pixel_offset:  # compressed, no biSizeImage: trust bfSize if plausible
        complete = n >= file_size
    else:
        complete = n > pixel_offset
    return ImageInfo('bmp', width, height, 1, complete)


# ----------------------------------------------------------------------------- WebP

def _webp_info(data):
    """RIFF container; size from the VP8 (lossy), VP8L (lossless) or VP8X (extended) chunk."""
    n = len(data)
    riff_size, = _unpack('<I', data, 4)
    if riff_size < 12:
        raise ImageHeaderError('bad RIFF size')
    fourcc = bytes(data[12:16])
    if fourcc == b'VP8 ':
        tag, start, width, height = _unpack('<B2x3sHH', data, 20)
        if tag & 1:
            raise ImageHeaderError('VP8 data does not start with a key frame')
        if start != b'\x9d\x01\x2a':
            raise ImageHeaderError('bad VP8 start code')
        width, height = width & 0x3FFF, height & 0x3FFF  # top 2 bits: scaling
    elif fourcc == b'VP8L':
        signature, bits = _unpack('<BI', data, 20)
        if signature != 0x2F:
            raise ImageHeaderError('bad VP8L signature')
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif fourcc == b'VP8X':
        w0, w1, h0, h1 = _unpack('<HBHB', data, 24)
        width, height = (w0 | w1 << 16) + 1, (h0 | h1 << 16) + 1
    else:
        raise ImageHeaderError('unknown WebP chunk %r' % fourcc)
    width, height = _check_size(width, height)
    complete = riff_size + 8 <= n
    orientation = 1
    if fourcc == b'VP8X':  # EXIF lives in a chunk of the extended format only
        end = min(n, riff_size + 8)
        pos = 12
        while pos + 8 <= end:
            ctype, length = struct.unpack_from('<4sI', data, pos)
            if ctype == b'EXIF':
                orientation = _exif_orientation(data[pos + 8:min(end, pos + 8 + length)])
                break
            pos += 8 + length + (length & 1)  # chunks are padded to even size
    return ImageInfo('webp', width, height, orientation, complete)


# ----------------------------------------------------------------------------- dispatch

# (format, ((offset, signature bytes), ...)) - WebP's RIFF size sits between its two parts.
_SIGNATURES = (
    ('jpeg', ((0, b'\xff\xd8\xff'),)),
    ('png', ((0, b'\x89PNG\r\n\x1a\n'),)),
    ('gif', ((0, b'GIF87a'),)),
    ('gif', ((0, b'GIF89a'),)),
    ('bmp', ((0, b'BM'),)),
    ('webp', ((0, b'RIFF'), (8, b'WEBP'))),
    ('tiff', ((0, b'II*\x00'),)),
    ('tiff', ((0, b'MM\x00*'),)),
    ('tiff', ((0, b'II+\x00'),)),  # BigTIFF
    ('tiff', ((0, b'MM\x00+'),)),
)
_PARSERS = {'jpeg': _jpeg_info, 'png': _png_info, 'gif': _gif_info, 'bmp': _bmp_info,
            'webp': _webp_info, 'tiff': _tiff_info}


def image_format(data):
    """The first bytes of a file -> the image format its magic bytes name, or None."""
    for fmt, parts in _SIGNATURES:
        if all(data[o:o + len(sig)] == sig for o, sig in parts):
            return fmt
    return None


def describe_start(data, count=24):
    """The first bytes of unrecognised data as a person would see them: "it looks like text,
    starting 'this is not an image'" when the first ``count`` bytes are printable text
    (UTF-8; a character cut at the end is dropped), else "starts with" and their hex."""
    head = bytes(data[:count])
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError as exc:
        text = head[:exc.start].decode('utf-8') if exc.start >= len(head) - 3 else ''
    if text and all(ch.isprintable() or ch in '\t\r\n' for ch in text):
        return 'it looks like text, starting %r' % text
    return 'starts with %s' % bytes(data[:8]).hex()


def _detect(data):
    """Magic bytes -> format name. Data too short for a signature it starts like is a cut header."""
    fmt = image_format(data)
    if fmt is not None:
        return fmt
    if not data:
        raise ImageHeaderError('not a recognised image format (empty data)')
    for fmt, parts in _SIGNATURES:
        if len(data) < max(o + len(sig) for o, sig in parts) and all(
                data[o:o + len(sig)] == sig[:max(0, len(data) - o)] for o, sig in parts):
            raise ImageHeaderError('truncated header')
    raise ImageHeaderError('not a recognised image format (%s)' % describe_start(data))


def image_info(data):
    """bytes of an image file -> ImageInfo(format, width, height, orientation, complete).

    Reads headers only: no pixels are decoded, and time and memory are bounded by len(data)
    whatever the header claims (a header saying 100000x100000 costs nothing).
    Raises ImageHeaderError (and nothing else, for any bytes) when the data is not a
    recognised image or its header is cut or malformed; TypeError if ``data`` is not bytes-like.
    """
    if not isinstance(data, bytes):
        data = bytes(memoryview(data))
    fmt = _detect(data)
    try:
        return _PARSERS[fmt](data)
    except ImageHeaderError:
        raise
    except (struct.error, IndexError, ValueError, OverflowError) as exc:
        # Safety net: whatever a damaged header trips over is still a damaged header.
        raise ImageHeaderError('malformed header (%s)' % type(exc).__name__) from None


# ----------------------------------------------------------------------------- orientation

# EXIF orientation -> how to turn the stored array upright (t = rows and columns swapped).
_UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],                   # mirror horizontally
    3: lambda a: a[::-1, ::-1],                # rotate 180
    4: lambda a: a[::-1],                      # mirror vertically
    5: lambda a: a.swapaxes(0, 1),             # transpose
    6: lambda a: a.swapaxes(0, 1)[:, ::-1],    # rotate 90 clockwise
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],  # transverse
    8: lambda a: a.swapaxes(0, 1)[::-1],       # rotate 90 counter-clockwise
}


def apply_orientation(image, orientation):
    """(H,W[,C]) array as stored + EXIF orientation 1..8 -> the upright (H',W'[,C]) array,
    C-contiguous (shares memory with ``image`` only for orientation 1 on a contiguous input).
    Raises ValueError for an orientation outside 1..8 or an array that is not 2-D or 3-D."""
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError('expected an (H,W) or (H,W,C) array, got shape %s' % (image.shape,))
    try:
        turn = _UPRIGHT[int(orientation)]
    except (KeyError, TypeError, ValueError):
        raise ValueError('EXIF orientation must be 1..8, got %r' % (orientation,)) from None
    return np.ascontiguousarray(turn(image))
