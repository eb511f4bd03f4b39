"""The original demo's crop (formats §3): scale the longer side to img_size, pad, crop around the centre."""
import cv2
import numpy as np


class PreprocessError(ValueError):
    """The image cannot be cropped (wrong layout, or a side that scales to zero pixels)."""


def _resize(img, scale):
    """(H,W,3) -> (floor(H*scale), floor(W*scale), 3) bilinear, and the actual (y, x) factors.

    The floor (not round) and the per-axis factors new/old are the original's; they are kept so
    crops and cameras match it bit for bit.
    """
    new_hw = np.floor(np.array(img.shape[:2]) * scale).astype(int)
    if new_hw.min() < 1:
        raise PreprocessError('image of size %dx%d is too thin to scale by %g'
                              % (img.shape[0], img.shape[1], scale))
    resized = cv2.resize(img, (int(new_hw[1]), int(new_hw[0])))  # cv2 dsize is (w, h)
    return resized, new_hw / np.array(img.shape[:2], dtype=np.float64)


def preprocess_image(img, img_size=224):
    """(H,W,3) uint8 RGB -> (crop (img_size, img_size, 3) float32 in [-1, 1], proc_param).

    proc_param = {'scale': float, 'start_pt': (2,) int (x, y), 'end_pt': (2,) int (x, y),
    'img_size': int}; start_pt is the crop corner in the padded, scaled image, which equals the
    scaled image centre (pad margin = img_size/2). Rounding is numpy's (half to even), as the
    original's np.round.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise PreprocessError('expected an (H,W,3) uint8 image, got %s %s' % (img.shape, img.dtype))
    longest = max(img.shape[:2])
    scale = float(img_size) / longest if longest != img_size else 1.0
    center = np.round(np.array(img.shape[:2]) / 2.0).astype(int)[::-1]  # (x, y)
    scaled, factors_yx = _resize(img, scale)
    center_scaled = np.round(center * factors_yx[::-1]).astype(int)
    margin = img_size // 2
    padded = np.pad(scaled, ((margin, margin), (margin, margin), (0, 0)), mode='edge')
    start_pt = center_scaled  # (scaled centre + margin) - margin: the crop corner when padded
    end_pt = start_pt + 2 * margin
    crop = padded[start_pt[1]:end_pt[1], start_pt[0]:end_pt[0]]
    crop = (2.0 * (crop / 255.0 - 0.5)).astype(np.float32)
    proc_param = {'scale': scale, 'start_pt': start_pt, 'end_pt': end_pt, 'img_size': img_size}
    return crop, proc_param
