"""Landmark files and the JSON sidecar of one prediction, checked against independent
computations: the embedding files read with pickle / np.load, a naive barycentric loop, the
render camera written out from docs/formats.md §4, scipy's rotation conversions."""
import io
import json
import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from config import default_config
from util.io.image_io import load_image
from util.pipeline import Pipeline
from util.face.frames import Frame, Picture
from util.outputs.naming import output_path
from util.outputs.photo import picture_outputs

IMG_SIZE = 224


class FixedBackend:
    """A network stand-in that predicts the given vertices and theta for every image."""

    image_size = IMG_SIZE
    n_theta = 159

    def __init__(self, vertices, theta):
        self.vertices, self.theta = np.float32(vertices), np.float32(theta)
        self.n_vertices = len(vertices)

    def predict(self, images, get_parameters=True):
        n = len(images)
        return np.repeat(self.vertices[None], n, 0), np.repeat(self.theta[None], n, 0)


def embeddings(flame_assets):
    """The embedding files read back with pickle and np.load (not util.face.landmarks)."""
    with open(flame_assets['static_embedding'], 'rb') as fh:
        static = pickle.load(fh, encoding='latin1')
    dynamic = np.load(flame_assets['dynamic_embedding'], allow_pickle=True).item()
    return static, dynamic


def naive_landmarks(vertices, faces, static, dynamic, yaw_deg):
    """(68,3) by a loop: contour of the yaw's entry (docs/formats.md §8), then static points."""
    yaw = int(np.clip(np.round(yaw_deg), -39, 39))
    index = yaw if yaw >= 0 else 39 - yaw
    pairs = list(zip(dynamic['lmk_face_idx'][index], dynamic['lmk_b_coords'][index]))
    pairs += list(zip(static['lmk_face_idx'], static['lmk_b_coords']))
    out = []
    for face, weights in pairs:
        corners = [vertices[faces[int(face)][k]] for k in range(3)]
        out.append(sum(float(w) * np.asarray(c, np.float64) for w, c in zip(weights, corners)))
    return np.array(out)


def yaw_of(rotvec):
    """Head yaw in degrees, by scipy: Z-Y-X angles of the rotation after a frontal Rx(180)."""
    head = Rotation.from_euler('x', 180, degrees=True) * Rotation.from_rotvec(rotvec)
    return head.as_euler('ZYX', degrees=True)[1]


@pytest.fixture(scope='module')
def flame(flame_assets):
    with open(flame_assets['flame_model'], 'rb') as fh:
        return pickle.load(fh, encoding='latin1')  # chumpy is installed for the tests


def run_one(flame_assets, flame, rotvec, tmp_path, box=None, image_shape=(300, 260)):
    """Outputs {path: bytes} of one picture predicted by a FixedBackend with pose ``rotvec``."""
    rng = np.random.default_rng(3)
    vertices = np.asarray(flame['v_template']) * [1, -1, -1] + rng.normal(0, 1e-3, (5023, 3))
    theta = np.zeros(159)
    theta[:3] = [7.5, 0.01, -0.02]
    theta[3:6] = rotvec
    theta[9:] = rng.normal(0, 0.5, 150)
    config = default_config(save_flame_parameters=True, save_landmarks=True,
                            draw_landmarks=True)
    files = {'load_path': 'fixed', 'flame_model_path': flame_assets['flame_model'],
             'flame_texture_data_path': flame_assets['texture_data'],
             'flame_static_embedding_path': flame_assets['static_embedding'],
             'flame_dynamic_embedding_path': flame_assets['dynamic_embedding']}
    pipeline = Pipeline(config, files, FixedBackend(vertices, theta))
    image = np.full(image_shape + (3,), 128, np.uint8)  # grey: no red in the background
    frame = Frame('x', image, box)
    pred = pipeline.predict(frame)
    return (picture_outputs(Picture('x', image, [frame]), [pred], pipeline.context, 'in/x.jpg'),
            vertices, theta)


def camera_by_hand(cam, box, image_shape):
    """The render camera from docs/formats.md §3/§4, written out: (f, c (2,), t (3,))."""
    h, w = image_shape
    x0, y0, x1, y1 = (0, 0, w, h) if box is None else box
    scale = IMG_SIZE / max(x1 - x0, y1 - y0)
    centre = np.round([(x0 + x1) / 2, (y0 + y1) / 2])
    new_hw = np.floor(np.array([h, w]) * scale)
    start = np.round(centre * (new_hw[::-1] / [w, h]))
    s, tx, ty = cam
    return 50000. / scale, start / scale, np.array([tx, ty, 50000. / (112 * s)])


@pytest.mark.parametrize('rotvec,box', [([np.pi, 0, 0], None),
                                        ([3.0, 0.35, 0.1], (40, 60, 180, 230)),
                                        ([3.1, -0.55, -0.2], (-30, 100, 150, 310))])
def test_landmarks_and_sidecar(flame_assets, flame, tmp_path, rotvec, box):
    out, vertices, theta = run_one(flame_assets, flame, rotvec, tmp_path, box)
    lmk3d = np.loadtxt(io.BytesIO(out[output_path('x', 'landmarks_3d')]))
    lmk2d = np.loadtxt(io.BytesIO(out[output_path('x', 'landmarks_2d')]))
    assert lmk3d.shape == (68, 3) and lmk2d.shape == (68, 2)

    static, dynamic = embeddings(flame_assets)
    faces = np.asarray(flame['f'])
    expected = naive_landmarks(np.float32(vertices), faces, static, dynamic, yaw_of(rotvec))
    np.testing.assert_allclose(lmk3d, expected, atol=1e-9)
    if abs(yaw_of(rotvec)) > 5:  # a turned head: the contour is not the frontal one
        frontal = naive_landmarks(np.float32(vertices), faces, static, dynamic, 0.)
        assert np.abs(lmk3d[:17] - frontal[:17]).max() > 1e-4

    f, c, t = camera_by_hand(theta[:3].astype(np.float32), box, (300, 260))
    v = lmk3d + t
    np.testing.assert_allclose(lmk2d, f * v[:, :2] / v[:, 2:] + c, atol=1e-6)

    sidecar = json.loads(out[output_path('x', 'params_json')])
    npy = np.load(io.BytesIO(out[output_path('x', 'params')]), allow_pickle=True).item()
    for key in ('cam', 'pose', 'shape', 'expression'):
        assert np.array_equal(np.float32(sidecar[key]), npy[key]), key
    head = (Rotation.from_euler('x', 180, degrees=True)
            * Rotation.from_rotvec(np.float32(rotvec).astype(np.float64)))
    roll, yaw, pitch = head.as_euler('ZYX', degrees=True)
    pose = sidecar['head_pose_deg']
    np.testing.assert_allclose([pose['yaw'], pose['pitch'], pose['roll']], [yaw, pitch, roll],
                               atol=1e-9)
    whole = [0, 0, 260, 300]
    assert sidecar['box'] == whole and sidecar['crop']['box'] == (whole if box is None else list(box))
    assert sidecar['source'] == 'in/x.jpg' and sidecar['face'] is None
    # crop pixels map back to input pixels: the crop centre is the box centre (rounded), and
    # the 224 crop pixels span the box's longer side
    crop = sidecar['crop']
    to_input = (np.array([112., 112.]) + crop['offset']) / crop['scale']
    np.testing.assert_allclose(to_input, c, atol=1e-9)  # the camera's principal point
    x0, y0, x1, y1 = crop['box']
    assert abs(to_input[0] - (x0 + x1) / 2) <= 1 and abs(to_input[1] - (y0 + y1) / 2) <= 1
    assert np.isclose(224 / crop['scale'], max(x1 - x0, y1 - y0))


def test_drawn_landmarks_sit_on_their_2d_positions(flame_assets, flame, tmp_path):
    out, _, _ = run_one(flame_assets, flame, [3.0, 0.3, 0.0], tmp_path, (40, 60, 180, 230))
    panel = load_image_bytes(out[output_path('x', 'panel')])
    lmk2d = np.loadtxt(io.BytesIO(out[output_path('x', 'landmarks_2d')]))
    overlay = panel[:, 260:520].astype(int)
    red = (overlay[..., 0] > 200) & (overlay[..., 1] < 120) & (overlay[..., 2] < 120)
    for x, y in np.round(lmk2d).astype(int):
        if 0 <= x < 260 and 0 <= y < 300:
            assert red[y, x], (x, y)
    assert red.sum() < 68 * 30  # dots, not a smear


def load_image_bytes(data):
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))
