"""util.pipeline in-process, on a checkpoint whose predictions differ per image."""
import os

import cv2
import numpy as np
import pytest

from config import default_config
from util.model.tf_backend import RingNet_inference
from util.io.image_io import load_image
from util.io.mesh_io import read_obj
from util.pipeline import Pipeline
from util.model.backend import load_backend
from util.outputs.naming import output_name
from util.pipeline.inputs import Entry, input_entries
from util.pipeline.reading import work_items


def image_items(paths):
    """Work items of image files (default flags)."""
    return work_items([Entry(p, output_name(p)) for p in paths], default_config())
from util.face.preprocess import preprocess_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """Three different loose crops of the sample image, as files."""
    folder = tmp_path_factory.mktemp('images')
    bgr = cv2.imread(IMAGE)
    cv2.imwrite(str(folder / 'a.png'), bgr)
    cv2.imwrite(str(folder / 'b.png'), bgr[20:, 10:])
    cv2.imwrite(str(folder / 'c.png'), cv2.flip(bgr, 1))
    return str(folder)


def test_batch_outputs_belong_to_their_own_image(checkpoint_v2, flame_assets, images, tmp_path):
    """Outputs are written on a worker thread while the next image runs: none may be mixed up."""
    config = default_config(save_obj_file=True, save_flame_parameters=True)
    files = {'load_path': checkpoint_v2, 'flame_model_path': flame_assets['flame_model'],
             'flame_texture_data_path': flame_assets['texture_data']}
    paths = [entry.path for entry in input_entries(images)]
    assert [os.path.basename(p) for p in paths] == ['a.png', 'b.png', 'c.png']
    assert Pipeline(config, files, load_backend(files['load_path'])).run(image_items(paths), str(tmp_path)).failed == 0

    net = RingNet_inference(default_config(load_path=checkpoint_v2))
    thetas = []
    for path in paths:
        crop, _ = preprocess_image(load_image(path), 224)
        verts, theta = net.predict(crop[None], get_parameters=True)
        name = os.path.splitext(os.path.basename(path))[0]
        written = read_obj(str(tmp_path / 'mesh' / (name + '.obj'))).v
        np.testing.assert_array_equal(written.astype(np.float32), verts[0])  # float32-exact
        params = np.load(str(tmp_path / 'params' / (name + '.npy')), allow_pickle=True)[()]
        np.testing.assert_array_equal(params['shape'], theta[0, 9:109])
        thetas.append(theta[0])
    assert not np.allclose(thetas[0], thetas[1]) and not np.allclose(thetas[0], thetas[2])


def test_failing_image_leaves_none_of_its_outputs(checkpoint_v2, flame_assets, tmp_path):
    config = default_config(save_obj_file=True, save_flame_parameters=True,
                            neutralize_expression=True, save_texture=True)
    files = {'load_path': checkpoint_v2, 'flame_model_path': flame_assets['flame_model'],
             'flame_texture_data_path': flame_assets['texture_data']}
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'texture').write_text('a file where the texture folder should be')
    errors = []

    class Err:
        write = errors.append

    assert Pipeline(config, files, load_backend(files['load_path'])).run(image_items([IMAGE]), str(out), err=Err).failed == 1
    assert ''.join(errors).count('error:') == 1
    written = [os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs]
    assert written == ['texture']  # no other output of the image, no temporaries


def test_texture_keeps_flame_faces_with_a_template_mesh(checkpoint_v2, flame_assets, tmp_path):
    """ft pairs with FLAME's faces row by row: a --template_mesh must not change the textured
    OBJ (nor the normals the texture projection uses)."""
    from smpl_webuser.serialization import load_model
    from util.io.mesh_io import write_obj
    flame = load_model(flame_assets['flame_model'])
    template = str(tmp_path / 'template.obj')
    write_obj(template, flame.v_template, flame.f[::-1][:, [0, 2, 1]])
    files = {'load_path': checkpoint_v2, 'flame_model_path': flame_assets['flame_model'],
             'flame_texture_data_path': flame_assets['texture_data']}
    outputs = {}
    for name, extra in (('plain', {}), ('template', {'template_mesh': template})):
        config = default_config(save_obj_file=True, save_texture=True, **extra)
        out = tmp_path / name
        assert Pipeline(config, files, load_backend(files['load_path'])).run(image_items([IMAGE]), str(out)).failed == 0
        outputs[name] = out
    textured = read_obj(str(outputs['template'] / 'texture' / '000001.obj'))
    np.testing.assert_array_equal(textured.f, flame.f)
    mesh = read_obj(str(outputs['template'] / 'mesh' / '000001.obj'))
    np.testing.assert_array_equal(mesh.f, flame.f[::-1][:, [0, 2, 1]])
    same = [cv2.imread(str(outputs[n] / 'texture' / '000001.png')) for n in outputs]
    np.testing.assert_array_equal(same[0], same[1])


def test_flame_model_of_another_size_is_refused_at_start(checkpoint_v2, tmp_path):
    import pickle
    import scipy.sparse as sp
    rng = np.random.default_rng(0)
    n = 30
    small = {'v_template': rng.normal(size=(n, 3)), 'f': rng.integers(0, n, (8, 3)),
             'shapedirs': rng.normal(size=(n, 3, 400)), 'posedirs': np.zeros((n, 3, 36)),
             'J_regressor': sp.csc_matrix(np.full((5, n), 1.0 / n)),
             'weights': np.full((n, 5), 0.2), 'kintree_table': np.array([[-1, 0, 1, 1, 1],
                                                                         [0, 1, 2, 3, 4]])}
    path = str(tmp_path / 'generic_model.pkl')
    with open(path, 'wb') as fh:
        pickle.dump(small, fh, protocol=2)
    files = {'load_path': checkpoint_v2, 'flame_model_path': path,
             'flame_texture_data_path': ''}
    with pytest.raises(ValueError, match='has 30 vertices, the network predicts 5023'):
        Pipeline(default_config(), files, load_backend(checkpoint_v2))
