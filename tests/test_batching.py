"""--batch_size in the pipeline: photos and a video's frames go through the network N at a time,
and every output is what the picture gets alone; a picture that fails in a batch fails alone."""
import os

import cv2
import numpy as np
import pytest

from config import default_config
from util.face.preprocess import preprocess_image
from util.io.image_io import load_image
from util.io.safe_pickle import load_pickle
from util.outputs.naming import output_name
from util.pipeline import Pipeline
from util.pipeline.inputs import Entry
from util.pipeline.reading import work_items

from test_golden_outputs import file_hashes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')


def image_theta(crop):
    """The stand-in network's theta (159,) for one crop (S, S, 3): a camera that fills the crop,
    and shape and expression read from the crop's own pixels."""
    theta = np.zeros(159, np.float32)
    theta[0] = 8.0
    rows = crop.mean(axis=(1, 2))  # (S,) row means: differ between the test's images
    theta[9:109] = rows[:100] * 0.5
    theta[109:159] = rows[100:150] * 0.2
    return theta


class RecordingBackend:
    """The backend interface: each image's result depends on that image alone (image_theta;
    vertices: the template scaled by its first shape value); ``calls`` records each call's
    batch size; a batch holding a uniform crop raises (a poisoned picture)."""
    image_size = 224
    n_theta = 159
    label = 'recording'

    def __init__(self, template):
        self.template = template
        self.n_vertices = len(template)
        self.calls = []

    def predict(self, images, get_parameters=True):
        self.calls.append(len(images))
        if any(np.ptp(image) == 0 for image in images):
            raise ValueError('a uniform image')
        theta = np.stack([image_theta(image) for image in images])
        vertices = self.template[None] * (1 + 0.1 * theta[:, 9, None, None])
        return vertices.astype(np.float32), theta


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    """Six different photos a.png .. f.png, and a uniform gray one, poison.png."""
    folder = tmp_path_factory.mktemp('photos')
    bgr = cv2.imread(IMAGE)
    variants = [bgr, bgr[20:, 10:], cv2.flip(bgr, 1), bgr[:-30], bgr[:, 25:], bgr[10:-10, ::-1]]
    for name, image in zip('abcdef', variants):
        cv2.imwrite(str(folder / (name + '.png')), image)
    cv2.imwrite(str(folder / 'poison.png'), np.full((200, 200, 3), 128, np.uint8))
    return folder


def run(flame_assets, paths, out, batch_size):
    """Pipeline.run on ``paths`` with --batch_size -> (RunResult, the backend's call sizes,
    error lines)."""
    config = default_config(save_obj_file=True, save_flame_parameters=True,
                            batch_size=batch_size)
    files = {'load_path': 'recording', 'flame_model_path': flame_assets['flame_model'],
             'flame_texture_data_path': flame_assets['texture_data']}
    template = load_pickle(flame_assets['flame_model'])['v_template']
    backend = RecordingBackend(np.asarray(template, np.float32))
    errors = []

    class Err:
        write = errors.append

    items = work_items([Entry(str(p), output_name(str(p))) for p in paths], config)
    result = Pipeline(config, files, backend).run(items, str(out), err=Err)
    return result, backend.calls, [line for line in ''.join(errors).splitlines() if line]


def test_photos_go_through_the_network_in_batches_with_their_own_results(
        flame_assets, photos, tmp_path):
    paths = sorted(photos.glob('[a-f].png'))
    one, calls_one, errors = run(flame_assets, paths, tmp_path / 'one', 1)
    assert (one.done, one.failed, errors) == (6, 0, [])
    assert calls_one == [1] * 6
    four, calls_four, errors = run(flame_assets, paths, tmp_path / 'four', 4)
    assert (four.done, four.failed, errors) == (6, 0, [])
    assert calls_four == [4, 2]
    assert file_hashes(tmp_path / 'four') == file_hashes(tmp_path / 'one')
    for path in paths:  # each photo's parameters are its own image's, computed here alone
        crop, _ = preprocess_image(load_image(str(path)), 224)
        params = np.load(str(tmp_path / 'four' / 'params' / (path.stem + '.npy')),
                         allow_pickle=True)[()]
        np.testing.assert_allclose(params['shape'], image_theta(crop)[9:109], rtol=1e-6)


def test_a_picture_that_fails_in_a_batch_fails_alone(flame_assets, photos, tmp_path):
    paths = [photos / 'a.png', photos / 'poison.png', photos / 'b.png', photos / 'c.png',
             photos / 'd.png']
    result, calls, errors = run(flame_assets, paths, tmp_path, 4)
    assert (result.done, result.failed) == (4, 1)
    assert len(errors) == 1 and 'poison.png' in errors[0] and 'uniform image' in errors[0]
    # the batch of four fails, then each of its pictures alone; the fifth photo its own batch
    assert calls == [4, 1, 1, 1, 1, 1]
    assert sorted(p for p in os.listdir(tmp_path / 'params') if p.endswith('.npy')) == [
        'a.npy', 'b.npy', 'c.npy', 'd.npy']


def test_video_frames_are_batched_within_the_clip(flame_assets, tmp_path):
    from test_video import pyav_video, write_clip
    clip = tmp_path / 'clip.avi'
    write_clip(clip, n_frames=7)
    one, calls_one, errors = run(flame_assets, [clip], tmp_path / 'one', 1)
    assert (one.done, errors) == (1, [])
    assert calls_one == [1] * 7
    three, calls_three, errors = run(flame_assets, [clip], tmp_path / 'three', 3)
    assert (three.done, errors) == (1, [])
    assert calls_three == [3, 3, 1]
    # the overlay video is not byte-stable even between two runs at batch 1 (libx264 beside a
    # busy process; its input frames are): each decoded frame must be nearest its own
    one_files, three_files = file_hashes(tmp_path / 'one'), file_hashes(tmp_path / 'three')
    video = 'video/clip.mp4'
    assert video in one_files and len(one_files) > 7
    assert {k: v for k, v in three_files.items() if k != video} == \
        {k: v for k, v in one_files.items() if k != video}
    frames_one = pyav_video(tmp_path / 'one' / video)[0]
    frames_three = pyav_video(tmp_path / 'three' / video)[0]
    assert len(frames_one) == len(frames_three) == 7
    for k, frame in enumerate(frames_three):
        distances = [np.abs(frame.astype(float) - other).mean() for other in frames_one]
        assert np.argmin(distances) == k and distances[k] < 1.0, distances
