"""util.face.preprocess.preprocess_image(img, img_size, box): the crop around a given box.

Documented behaviour (formats §3, crop box): the box's longer side scales to img_size (exactly
1.0 when it already is img_size), the centre is the box centre rounded half to even, then the
original's arithmetic: cv2.resize of the whole image to (floor(W*scale), floor(H*scale)),
scaled centre = round(centre * new/old per axis), the img_size² window around it from the
image padded with edge replication, 2*(p/255-0.5). The reference below is written from that
description with np.pad and slicing, as the original did it.
"""
import math

import cv2
import numpy as np
import pytest

from util.face.camera import render_camera
from util.face.preprocess import preprocess_image


def naive_crop(img, img_size, box):
    """The documented crop, with Python scalars and np.pad(mode='edge') as in the original.

    The original pads by img_size/2, enough for any centre inside the image; a centre farther
    out needs ``extra`` more rows/columns of the same edge replication, after which the window
    is the same slice as the original's image_pad[start:start + img_size].
    """
    h, w = img.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    longest = max(x1 - x0, y1 - y0)
    scale = 1.0 if longest == img_size else img_size / longest
    cx, cy = round((x0 + x1) / 2), round((y0 + y1) / 2)  # Python's round: half to even
    new_w, new_h = math.floor(w * scale), math.floor(h * scale)
    scaled = cv2.resize(img, (new_w, new_h))
    sx, sy = round(cx * (new_w / w)), round(cy * (new_h / h))
    margin = img_size // 2
    extra = max(0, -sx, -sy, sx - new_w + 1, sy - new_h + 1)
    pad = margin + extra
    padded = np.pad(scaled, ((pad, pad), (pad, pad), (0, 0)), mode='edge')
    # centre in the padded image = (sx + pad, sy + pad); window from centre - margin
    crop = padded[sy + extra:sy + extra + img_size, sx + extra:sx + extra + img_size]
    assert crop.shape == (img_size, img_size, 3)
    crop = (2 * (crop / 255. - 0.5)).astype(np.float32)
    return crop, {'scale': scale, 'start_pt': (sx, sy), 'end_pt': (sx + img_size, sy + img_size),
                  'img_size': img_size}


def assert_same_param(param, expected):
    assert param['scale'] == expected['scale']
    assert tuple(int(v) for v in param['start_pt']) == tuple(expected['start_pt'])
    assert tuple(int(v) for v in param['end_pt']) == tuple(expected['end_pt'])
    assert param['img_size'] == expected['img_size']


def random_image(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# seeded random sizes (odd, even, smaller and larger than 224) plus a few chosen ones
WHOLE_SIZES = [(224, 224), (223, 225), (5, 7), (7, 5), (101, 99), (480, 640), (277, 180),
               (225, 224), (1, 224), (224, 3)] + \
              [tuple(int(n) for n in hw)
               for hw in np.random.default_rng(77).integers(2, 700, size=(30, 2))]


@pytest.mark.parametrize('hw', WHOLE_SIZES)
def test_whole_image_box_is_bit_identical_to_no_box(hw):
    h, w = hw
    img = random_image(h, w, seed=h * 1009 + w)
    crop_none, param_none = preprocess_image(img, 224)
    for box in [(0, 0, w, h), (0.0, 0.0, float(w), float(h)), np.array([0, 0, w, h])]:
        crop, param = preprocess_image(img, 224, box=box)
        assert crop.dtype == np.float32 and crop.shape == (224, 224, 3)
        assert crop.tobytes() == crop_none.tobytes()
        assert type(param['scale']) is type(param_none['scale']) is float
        assert param['scale'] == param_none['scale']
        for key in ('start_pt', 'end_pt'):
            np.testing.assert_array_equal(param[key], param_none[key])
        assert param['img_size'] == param_none['img_size'] == 224


OFF_CENTRE = [
    # (image h, w), box (x0, y0, x1, y1)
    ((480, 640), (100, 50, 260, 230)),       # inside, taller than wide, scale > 1
    ((480, 640), (300, 100, 620, 460)),      # inside, 320x360: scale 0.62
    ((480, 640), (-50, 300, 150, 520)),      # over the left and bottom borders
    ((480, 640), (600, -300, 900, -100)),    # centre (750, -200): outside the image
    ((481, 333), (3, 4, 100, 79)),           # centre (51.5, 41.5) -> (52, 42), half to even
    ((481, 333), (2, 4, 99, 77)),            # centre (50.5, 40.5) -> (50, 40)
    ((300, 400), (10, 20, 234, 120)),        # longer side exactly 224: scale 1.0
    ((200, 150), (60, 90, 100, 120)),        # 40x30 box: scale 5.6
    ((101, 77), (10.5, 20.25, 50.75, 44.0)), # a float box
    ((150, 250), (-400, -300, 600, 500)),    # box much larger than the image: scale < 1
    ((97, 113), (90, 80, 140, 150)),         # box sticking out at the bottom right corner
]


@pytest.mark.parametrize('hw,box', OFF_CENTRE)
def test_off_centre_box_matches_the_padded_reference(hw, box):
    img = random_image(*hw, seed=sum(hw))
    crop, param = preprocess_image(img, 224, box=box)
    expected, expected_param = naive_crop(img, 224, box)
    assert crop.dtype == np.float32 and crop.shape == (224, 224, 3)
    assert crop.tobytes() == expected.tobytes()
    assert_same_param(param, expected_param)


def test_the_box_changes_the_crop():
    """A box that is not the whole image gives another crop (the reference is not trivially met)."""
    img = random_image(480, 640, seed=3)
    whole, _ = preprocess_image(img, 224)
    boxed, _ = preprocess_image(img, 224, box=(100, 50, 260, 230))
    assert not np.array_equal(whole, boxed)


def project_perspective(point, f, c, t):
    """u = f * (X + t) / (Z + tz) + c, per axis: a 3-D point in the network's frame -> pixels."""
    x, y, z = point
    return np.array([f * (x + t[0]) / (z + t[2]) + c[0], f * (y + t[1]) / (z + t[2]) + c[1]])


# (image h, w), box, square (left, top) and side in image pixels
OVERLAY_CASES = [
    ((400, 600), (350, 40, 470, 160), (395, 85), 6),      # 120 px box: scale 1.87
    ((400, 600), (60, 250, 116, 306), (80, 270), 4),      # 56 px box: scale 4
    ((480, 640), (200, 60, 520, 380), (400, 300), 15),    # 320 px box: scale 0.7
    ((480, 640), (-80, 100, 368, 548), (150, 400), 21),   # 448 px box over two borders: 0.5
    ((333, 517), (301, 17, 401, 97), (377, 31), 5),       # odd sizes, scale 2.24
]


@pytest.mark.parametrize('hw,box,corner,side', OVERLAY_CASES)
def test_overlay_lands_on_the_box(hw, box, corner, side):
    """A point the network would place on a feature in the crop is drawn on that feature in
    the input image: crop -> weak-perspective camera -> render_camera -> input pixels.

    The tolerance is 1 px. What it absorbs: the camera maps crop pixels back with
    proc_param['scale'] and no half-pixel term, while cv2.resize samples at pixel centres
    ((j + 0.5) / scale - 0.5) and the per-axis factor floor(W*scale)/W differs slightly from
    scale; together about |0.5 - 0.5/scale| + x * (1 - factor/scale), plus the bilinear blur of
    the square's edges in the centroid. Measured here: 0.15 to 0.48 px, following 0.5 - 0.5/scale.
    """
    h, w = hw
    img = np.full((h, w, 3), 10, np.uint8)
    left, top = corner
    img[top:top + side, left:left + side] = 250
    truth = np.array([left + (side - 1) / 2.0, top + (side - 1) / 2.0])  # (x, y)
    x0, y0, x1, y1 = box
    assert x0 <= truth[0] < x1 and y0 <= truth[1] < y1

    crop, param = preprocess_image(img, 224, box=box)
    weight = (crop[..., 0] - crop.min()).astype(np.float64)  # 0 on the background
    rows, cols = np.indices(weight.shape)
    centroid = np.array([(weight * cols).sum(), (weight * rows).sum()]) / weight.sum()
    assert weight.sum() > 0 and 1 < centroid.min() and centroid.max() < 222  # seen in the crop

    # a point at depth ~0 and a weak-perspective camera that put it on the centroid:
    # crop_px = (s * (X + t) + 1) / 2 * 224
    s, point = 1.3, np.array([0.05, -0.04, 1e-4])
    t = (2 * centroid / 224 - 1) / s - point[:2]
    np.testing.assert_allclose((s * (point[:2] + t) + 1) / 2 * 224, centroid)
    cam = np.array([s, t[0], t[1]])

    rc = render_camera(cam, param, 224)
    drawn = project_perspective(point, rc.f, rc.c, rc.t)
    assert np.abs(drawn - truth).max() <= 1.0, (drawn, truth, param['scale'])


def test_a_window_sampled_from_a_huge_scaling_matches_the_scaled_image():
    """Past MAX_SCALED_PIXELS only the 224² window is sampled (no scaled copy of the image):
    the same start point, and pixels within rounding of cv2.resize's, wherever the window is."""
    from util.face.preprocess import scale_and_crop
    rng = np.random.default_rng(5)
    image = cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), (0, 0), 2)
    for scale, centre in ((3.7, (200, 150)), (2.2, (5, 290)), (0.6, (390, 10)), (5.0, (-20, 40))):
        centre = np.array(centre)
        full, start = scale_and_crop(image, scale, centre, 224)
        window, start_w = scale_and_crop(image, scale, centre, 224, max_scaled_pixels=1)
        assert np.array_equal(start, start_w)
        assert np.abs(full.astype(int) - window).max() <= 2, (scale, centre)
