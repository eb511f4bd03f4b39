"""util/image_io: layouts and sample types -> RGB uint8, one-line errors, colours on disk (checked with PIL)."""
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from util.io.atomic import atomic_path
from util.io.image_io import ImageError, encode_image, load_image


def write_image(path, rgb):
    """Write (H,W,3) uint8 RGB to ``path`` (format from its extension) atomically."""
    data = encode_image(rgb, os.path.splitext(path)[1], name=path)
    with atomic_path(path) as tmp, open(tmp, 'wb') as fh:
        fh.write(data)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rng_image(shape, dtype=np.uint8, high=256, seed=0):
    return np.random.default_rng(seed).integers(0, high, size=shape).astype(dtype)


def test_rgb_png_written_by_pil_reads_back_exactly(tmp_path):
    rgb = _rng_image((17, 23, 3))
    path = str(tmp_path / 'a.png')
    Image.fromarray(rgb, 'RGB').save(path)
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (17, 23, 3)
    np.testing.assert_array_equal(out, rgb)


def test_write_image_puts_correct_colours_on_disk(tmp_path):
    rgb = _rng_image((9, 11, 3), seed=1)
    rgb[0, 0] = (255, 0, 0)  # pure red must stay red on disk
    path = str(tmp_path / 'sub' / 'out.png')
    write_image(path, rgb)
    np.testing.assert_array_equal(np.asarray(Image.open(path).convert('RGB')), rgb)
    assert os.listdir(str(tmp_path / 'sub')) == ['out.png']  # no temp file left behind


def test_write_image_rejects_bad_input_and_leaves_nothing(tmp_path):
    with pytest.raises(ImageError, match='out.png'):
        write_image(str(tmp_path / 'out.png'), np.zeros((4, 4), np.uint8))
    with pytest.raises(ImageError, match='out.nosuchformat'):
        write_image(str(tmp_path / 'out.nosuchformat'), np.zeros((4, 4, 3), np.uint8))
    assert os.listdir(str(tmp_path)) == []


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = _rng_image((8, 5), seed=2)
    path = str(tmp_path / 'g.png')
    Image.fromarray(gray, 'L').save(path)
    out = load_image(path)
    assert out.shape == (8, 5, 3)
    for k in range(3):
        np.testing.assert_array_equal(out[..., k], gray)


def test_rgba_is_composited_over_white(tmp_path):
    rgba = _rng_image((6, 7, 4), seed=3)
    rgba[0, 0, 3], rgba[0, 1, 3] = 0, 255
    path = str(tmp_path / 'a.png')
    Image.fromarray(rgba, 'RGBA').save(path)
    a = rgba[..., 3:] / 255.0
    expected = np.round(rgba[..., :3] * a + 255 * (1 - a)).astype(np.uint8)
    out = load_image(path)
    np.testing.assert_array_equal(out, expected)
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 1]) == tuple(rgba[0, 1, :3])


def test_16_bit_is_scaled_to_8_bit(tmp_path):
    rgb16 = _rng_image((5, 6, 3), np.uint16, 65536, seed=4)
    rgb16[0, 0] = (0, 65535, 32896)
    path = str(tmp_path / 'a16.png')
    cv2.imwrite(path, rgb16[..., ::-1])
    out = load_image(path)
    expected = np.array([[[int(int(v) * 255 / 65535 + 0.5) for v in px] for px in row] for row in rgb16])
    np.testing.assert_array_equal(out, expected)
    assert tuple(out[0, 0]) == (0, 255, 128)


def test_float_tiff_is_taken_as_unit_range(tmp_path):
    rgb = np.random.default_rng(5).uniform(-0.2, 1.2, size=(4, 3, 3)).astype(np.float32)
    path = str(tmp_path / 'f.tiff')
    assert cv2.imwrite(path, rgb[..., ::-1])
    expected = np.round(np.clip(rgb, 0, 1).astype(np.float64) * 255).astype(np.uint8)
    np.testing.assert_array_equal(load_image(path), expected)


def test_jpeg_matches_pil_decoder():
    path = os.path.join(ROOT, 'input_images', '000001.jpg')
    ours = load_image(path).astype(int)
    ref = np.asarray(Image.open(path).convert('RGB')).astype(int)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).mean() < 1.0  # two JPEG decoders agree up to IDCT rounding


@pytest.mark.parametrize('content', [None, b'', b'this is not an image'])
def test_bad_files_raise_one_line_error_naming_the_file(tmp_path, content):
    path = str(tmp_path / 'bad.jpg')
    if content is not None:
        with open(path, 'wb') as f:
            f.write(content)
    with pytest.raises(ImageError) as err:
        load_image(path)
    msg = str(err.value)
    assert path in msg and '\n' not in msg
    assert isinstance(err.value, ValueError)
