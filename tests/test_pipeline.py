"""util.pipeline in-process, on a checkpoint whose predictions differ per image."""
import os

import cv2
import numpy as np
import pytest

from config import default_config
from run_RingNet import RingNet_inference
from util.image_io import load_image
from util.mesh_io import read_obj
from util.pipeline import Pipeline, list_images
from util.preprocess import preprocess_image

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
    paths = list_images(images)
    assert [os.path.basename(p) for p in paths] == ['a.png', 'b.png', 'c.png']
    assert Pipeline(config, files).run(paths, str(tmp_path)) == 0

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
