"""util/preprocess: the formats §3 crop, bit for bit against a reference written here another way."""
import math

import cv2
import numpy as np
import pytest

from util.face.preprocess import PreprocessError, preprocess_image

SIZES = [(224, 224), (100, 80), (80, 100), (300, 500), (501, 333), (37, 225), (225, 37),
         (7, 9), (448, 300), (223, 224), (224, 10), (1023, 767), (225, 225), (113, 57),
         (277, 180), (150, 299)]  # 277 * (224 / 277) floors to 223: the original's quirk, kept


def reference_crop(img, img_size=224):
    """Formats §3 with Python scalars, index clamping instead of np.pad, per-pixel indexing."""
    h, w = img.shape[:2]
    scale = img_size / max(h, w) if max(h, w) != img_size else 1.0
    cx, cy = round(w / 2), round(h / 2)  # Python 3 round is half-to-even, like np.round
    new_h, new_w = math.floor(h * scale), math.floor(w * scale)
    scaled = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    sx, sy = round(cx * (new_w / w)), round(cy * (new_h / h))
    half = img_size // 2
    # Crop pixel (i, j) is padded pixel (sy + i, sx + j) = scaled pixel (sy + i - half, ...) clamped.
    rows = [min(max(sy + i - half, 0), new_h - 1) for i in range(img_size)]
    cols = [min(max(sx + j - half, 0), new_w - 1) for j in range(img_size)]
    crop = scaled[np.ix_(rows, cols)]
    return (2 * (crop / 255. - 0.5)).astype(np.float32), scale, (sx, sy)


RANDOM_SIZES = [tuple(int(n) for n in hw)  # seeded: the same 24 random sizes on every run
                for hw in np.random.default_rng(2026).integers(2, 900, size=(24, 2))]


@pytest.mark.parametrize('hw', SIZES + RANDOM_SIZES)
def test_matches_reference_bit_for_bit(hw):
    rng = np.random.default_rng(hw[0] * 10007 + hw[1])
    img = rng.integers(0, 256, size=hw + (3,), dtype=np.uint8)
    crop, param = preprocess_image(img, 224)
    ref, scale, start = reference_crop(img)
    assert crop.dtype == np.float32 and crop.shape == (224, 224, 3)
    np.testing.assert_array_equal(crop, ref)
    assert param['scale'] == scale and param['img_size'] == 224
    assert tuple(param['start_pt']) == start
    assert tuple(param['end_pt']) == (start[0] + 224, start[1] + 224)
    assert crop.min() >= -1 and crop.max() <= 1


def test_exact_size_image_is_its_own_crop():
    img = np.random.default_rng(1).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
    crop, param = preprocess_image(img)
    np.testing.assert_array_equal(crop, (img / 127.5 - 1).astype(np.float32))
    assert param['scale'] == 1.0 and tuple(param['start_pt']) == (112, 112)


def test_half_way_centre_rounds_to_even():
    # h = 5 -> centre 2.5 -> 2 (np.round), not 3; w = 7 -> 3.5 -> 4.
    img = np.zeros((5, 7, 3), np.uint8)
    _, param = preprocess_image(img, img_size=7)
    assert tuple(param['start_pt']) == (4, 2)


def test_rejects_bad_layouts_and_too_thin_images():
    with pytest.raises(PreprocessError):
        preprocess_image(np.zeros((10, 10), np.uint8))
    with pytest.raises(PreprocessError):
        preprocess_image(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(PreprocessError, match='too thin'):
        preprocess_image(np.zeros((1000, 3, 3), np.uint8))
