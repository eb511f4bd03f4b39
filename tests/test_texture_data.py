"""util.render.texture_data: the texture file is checked once, with one-line errors naming it."""
import numpy as np
import pytest

from smpl_webuser.serialization import load_model_arrays
from util.face.camera import RenderCamera
from util.render.project_on_mesh import compute_texture_map
from util.render.texture_data import TextureDataError, check_texture_data, load_texture_data


@pytest.fixture(scope='module')
def model(flame_assets):
    return load_model_arrays(flame_assets['flame_model'])


@pytest.fixture(scope='module')
def raw(flame_assets):
    return np.load(flame_assets['texture_data'], allow_pickle=True)[()]  # our own test file


def test_loads_and_canonicalises(flame_assets, model, raw):
    data = load_texture_data(flame_assets['texture_data'], len(model['v_template']),
                             len(model['f']))
    assert data['img_size'] == int(raw['img_size'])
    for key in ('x_coords', 'y_coords', 'valid_pixel_ids', 'valid_pixel_3d_faces', 'ft'):
        assert data[key].dtype == np.int64
        np.testing.assert_array_equal(data[key].reshape(np.shape(raw[key])), raw[key])
    np.testing.assert_array_equal(data['vt'], raw['vt'])


@pytest.mark.parametrize('change, message', [
    (lambda d: d.pop('vt'), 'missing key(s) vt'),
    (lambda d: d.__setitem__('valid_pixel_3d_faces', d['valid_pixel_3d_faces'] + 10 ** 7),
     'valid_pixel_3d_faces has values outside [0, 5023)'),
    (lambda d: d.__setitem__('x_coords', d['x_coords'] + 10 ** 6),
     'x_coords of valid pixels has values outside [0, 512)'),
    (lambda d: d.__setitem__('valid_pixel_ids', -d['valid_pixel_ids'] - 1),
     'valid_pixel_ids has values outside'),
    (lambda d: d.__setitem__('ft', d['ft'][:-1]), 'ft has shape'),
    (lambda d: d.__setitem__('ft', d['ft'] + len(d['vt'])), 'ft has values outside'),
    (lambda d: d.__setitem__('valid_pixel_b_coords', d['valid_pixel_b_coords'][:, :2]),
     'valid_pixel_b_coords has shape'),
])
def test_malformed_files_get_one_line_errors(tmp_path, model, raw, change, message):
    data = {k: np.array(v, copy=True) for k, v in raw.items()}
    change(data)
    path = str(tmp_path / 'texture_data_512.npy')
    np.save(path, data)
    with pytest.raises(TextureDataError) as exc:
        load_texture_data(path, len(model['v_template']), len(model['f']))
    assert str(exc.value).startswith(path + ': ') and message in str(exc.value)
    assert '\n' not in str(exc.value)


def test_projection_refuses_unchecked_out_of_range_data(model, raw):
    """A dict that skipped the check must raise, not write outside the texture (numba does not
    bounds-check)."""
    data = check_texture_data(raw, len(model['v_template']), len(model['f']))
    data['valid_pixel_3d_faces'] = data['valid_pixel_3d_faces'] + 10 ** 7
    cam = RenderCamera(f=5000.0, c=np.array([100.0, 100.0]), t=np.array([0.0, 0.0, 10.0]))
    image = np.zeros((200, 200, 3), np.uint8)
    with pytest.raises(ValueError, match='out of range'):
        compute_texture_map(image, model['v_template'], cam, data, model['f'])
