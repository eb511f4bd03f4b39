"""util.face.camera.image_weak_perspective / crop_weak_perspective (--smooth's camera in input
pixels) against the render camera's own projection."""
import numpy as np

from util.face.camera import (crop_weak_perspective, image_weak_perspective, project,
                         render_camera, to_camera)


def test_image_camera_projects_like_the_render_camera_and_inverts():
    rng = np.random.default_rng(0)
    n = 6
    cam = np.column_stack([rng.uniform(5, 12, n), rng.normal(0, 0.02, (n, 2))])
    scale = rng.uniform(0.2, 3.0, n)
    start = rng.integers(-50, 400, (n, 2))
    image_cam = image_weak_perspective(cam, scale, start - 112.0, 224)
    for k in range(n):
        proc_param = {'scale': scale[k], 'start_pt': start[k], 'img_size': 224}
        render = render_camera(cam[k], proc_param)
        points = np.column_stack([rng.normal(0, 0.1, (5, 2)), np.zeros(5)])  # Z = 0: exact
        want = project(to_camera(points, render), render.f, render.c)
        got = image_cam[k, :1] * points[:, :2] + image_cam[k, 1:]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(crop_weak_perspective(image_cam, scale, start - 112.0, 224), cam,
                               rtol=1e-12, atol=1e-12)
