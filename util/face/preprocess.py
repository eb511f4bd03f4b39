"""The original demo's crop (docs/formats.md §3), around the whole image or around a given box.

Choosing the box (the whole image, or a detected face) is kept apart from cropping, as in the
original's ``scale_and_crop(image, scale, center, img_size)``: the box only sets the scale and
the centre; the arithmetic after that is the same for every box.
"""
import cv2
import numpy as np


class PreprocessError(ValueError):
    """The image cannot be cropped (wrong layout, a bad box, or a side that scales to zero)."""


def scaled_size(shape, scale):
    """(H, W, ...) and scale -> (2,) int (floor(H*scale), floor(W*scale)).

    The floor (not round) and the per-axis factors new/old that follow from it are the
    original's; they are kept so crops and cameras match it bit for bit.
    """
    new_hw = np.floor(np.array(shape[:2]) * scale).astype(int)
    if new_hw.min() < 1:
        raise PreprocessError('image of size %dx%d is too thin to scale by %g'
                              % (shape[0], shape[1], scale))
    return new_hw


def box_scale_center(img_shape, img_size, box=None):
    """Scale and centre of the crop for ``box`` (x0, y0, x1, y1) in image pixels.

    -> (scale float, center (2,) int (x, y)): the box's longer side scales to img_size, and the
    centre is the box centre rounded half to even. ``box=None`` is the whole image
    (0, 0, W, H), which is the original's choice exactly.
    """
    h, w = img_shape[:2]
    x0, y0, x1, y1 = (0, 0, w, h) if box is None else (float(b) for b in box)
    longest = max(x1 - x0, y1 - y0)
    if not np.isfinite([x0, y0, x1, y1]).all() or longest <= 0:
        raise PreprocessError('crop box %s is empty or not finite' % ((x0, y0, x1, y1),))
    scale = float(img_size) / longest if longest != img_size else 1.0
    center = np.round(np.array([(y0 + y1) / 2.0, (x0 + x1) / 2.0])).astype(int)[::-1]
    return scale, center


# Above this many pixels the scaled image is not made at all: only the crop window is sampled
# (a small face in a 50-megapixel photo would otherwise be scaled up to gigabytes).
MAX_SCALED_PIXELS = 25_000_000


def scale_and_crop(img, scale, center, img_size, max_scaled_pixels=MAX_SCALED_PIXELS):
    """(H,W,3) uint8, scale, center (2,) int (x, y) in image pixels -> (crop (img_size,
    img_size, 3) uint8, start_pt (2,) int (x, y)).

    The image is resized by ``scale``, then the img_size² window centred on the scaled centre
    is taken, replicating edge pixels outside the image (the original pads by img_size/2 with
    edge replication; clamping the indices gives the same pixels for any centre, even one
    outside the image). start_pt is the window's corner in the padded image, i.e. the scaled
    centre. When the scaled image would exceed ``max_scaled_pixels``, the window's pixels are
    sampled from the original directly with the same bilinear mapping (cv2.remap; values may
    differ from cv2.resize's by a grey level of rounding), so memory stays bounded.
    """
    new_hw = scaled_size(img.shape, scale)
    factors_yx = new_hw / np.array(img.shape[:2], dtype=np.float64)
    start_pt = np.round(center * factors_yx[::-1]).astype(int)
    half = img_size // 2
    rows = np.clip(np.arange(img_size) + start_pt[1] - half, 0, new_hw[0] - 1)
    cols = np.clip(np.arange(img_size) + start_pt[0] - half, 0, new_hw[1] - 1)
    if int(new_hw[0]) * int(new_hw[1]) <= max_scaled_pixels:
        scaled = cv2.resize(img, (int(new_hw[1]), int(new_hw[0])))  # bilinear; dsize is (w, h)
        return scaled[rows[:, None], cols[None, :]], start_pt
    # cv2.resize's bilinear mapping: scaled pixel x samples the original at (x + 0.5) / f - 0.5
    src_x = ((cols + 0.5) / factors_yx[1] - 0.5).astype(np.float32)
    src_y = ((rows + 0.5) / factors_yx[0] - 0.5).astype(np.float32)
    map_x, map_y = np.meshgrid(src_x, src_y)
    crop = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, start_pt


def preprocess_image(img, img_size=224, box=None):
    """(H,W,3) uint8 RGB -> (crop (img_size, img_size, 3) float32 in [-1, 1], proc_param).

    box: (x0, y0, x1, y1) in image pixels to crop around (docs/formats.md §3 "crop box"), or None for
    the whole image (the original). box=(0, 0, W, H) gives the same result, bit for bit.
    proc_param = {'scale': float, 'start_pt': (2,) int (x, y), 'end_pt': (2,) int (x, y),
    'img_size': int}; start_pt is the crop corner in the padded, scaled image, which equals the
    scaled box centre (pad margin = img_size/2). Rounding is numpy's (half to even), as the
    original's np.round.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise PreprocessError('expected an (H,W,3) uint8 image, got %s %s' % (img.shape, img.dtype))
    scale, center = box_scale_center(img.shape, img_size, box)
    crop, start_pt = scale_and_crop(img, scale, center, img_size)
    crop = (2.0 * (crop / 255.0 - 0.5)).astype(np.float32)
    end_pt = start_pt + 2 * (img_size // 2)
    proc_param = {'scale': scale, 'start_pt': start_pt, 'end_pt': end_pt, 'img_size': img_size}
    return crop, proc_param
