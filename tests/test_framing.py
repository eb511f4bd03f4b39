"""util.face.framing (similarity fit, CelebA box) and util.face.detect.select_faces, without a detector."""
import numpy as np
import pytest

from util.face.detect import Face, select_faces
from util.face.framing import CELEBA_POINTS, CELEBA_SIZE, celeba_box, similarity_fit


def _rotate(points, angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * points[:, 0] - s * points[:, 1], s * points[:, 0] + c * points[:, 1]],
                    axis=1)


def _lstsq_similarity(src, dst):
    """Reference: solve [x -y 1 0; y x 0 1] (a, b, tx, ty) = (x', y') numerically."""
    rows = []
    for x, y in src:
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
    (a, b, tx, ty), *_ = np.linalg.lstsq(np.array(rows), dst.reshape(-1), rcond=None)
    return np.hypot(a, b), np.arctan2(b, a), np.array([tx, ty])


def test_celeba_constants():
    assert CELEBA_SIZE == (178, 218)
    assert CELEBA_POINTS.shape == (5, 2) and CELEBA_POINTS.dtype == np.float64
    np.testing.assert_array_equal(CELEBA_POINTS, [[69, 111], [108, 111], [88, 136], [72, 152],
                                                  [105, 152]])


@pytest.mark.parametrize('seed', range(5))
def test_similarity_fit_recovers_a_known_similarity(seed):
    rng = np.random.default_rng(seed)
    src = rng.uniform(-100, 100, (7, 2))
    scale, angle, t = rng.uniform(0.1, 10), rng.uniform(-np.pi, np.pi), rng.uniform(-500, 500, 2)
    dst = scale * _rotate(src, angle) + t
    got_scale, got_angle, got_t = similarity_fit(src, dst)
    assert got_scale == pytest.approx(scale, rel=1e-12)
    assert got_angle == pytest.approx(angle, abs=1e-12)
    np.testing.assert_allclose(got_t, t, rtol=0, atol=1e-9)


@pytest.mark.parametrize('seed', range(5))
def test_similarity_fit_matches_numerical_least_squares(seed):
    rng = np.random.default_rng(100 + seed)
    src = rng.uniform(0, 200, (5, 2))
    dst = rng.uniform(0, 200, (5, 2))  # unrelated points: a real least-squares problem
    got = similarity_fit(src, dst)
    ref = _lstsq_similarity(src, dst)
    assert got[0] == pytest.approx(ref[0], rel=1e-9)
    assert got[1] == pytest.approx(ref[1], abs=1e-9)
    np.testing.assert_allclose(got[2], ref[2], rtol=0, atol=1e-7)


def test_similarity_fit_rejects_degenerate_input():
    with pytest.raises(ValueError):
        similarity_fit(np.ones((5, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError):
        similarity_fit(np.zeros((5, 2)), np.zeros((4, 2)))


def test_celeba_box_of_the_template_is_the_whole_celeba_image():
    box = celeba_box(CELEBA_POINTS)
    assert box.shape == (4,) and box.dtype == np.float64
    np.testing.assert_allclose(box, [0, 0, 178, 218], rtol=0, atol=1e-9)


def test_celeba_box_scaled_and_shifted_template():
    # twice as big, moved by (300, 50): the image spans x 300..656, y 50..486
    np.testing.assert_allclose(celeba_box(2 * CELEBA_POINTS + [300, 50]), [300, 50, 656, 486],
                               atol=1e-9)


def test_celeba_box_rotated_template():
    # template scaled by 1.5 and turned 90 degrees (x, y) -> (-y, x), then moved by (400, 100).
    # The image centre (89, 109) goes to (-163.5, 133.5) + (400, 100) = (236.5, 233.5); the box
    # stays axis-aligned, 1.5 * 178 = 267 wide and 1.5 * 218 = 327 high, around that centre.
    points = 1.5 * CELEBA_POINTS[:, ::-1] * [-1, 1] + [400, 100]
    np.testing.assert_allclose(celeba_box(points),
                               [236.5 - 133.5, 233.5 - 163.5, 236.5 + 133.5, 233.5 + 163.5],
                               atol=1e-9)


def test_celeba_box_rejects_bad_keypoints():
    with pytest.raises(ValueError):
        celeba_box(CELEBA_POINTS[:4])
    with pytest.raises(ValueError):
        celeba_box(np.full((5, 2), np.nan))


def _face(x0, y0, side):
    return Face(box=np.array([x0, y0, x0 + side, y0 + side], dtype=np.float64), score=0.99,
                keypoints=np.zeros((5, 2)))


def test_select_faces_orders_left_to_right_then_top_to_bottom():
    a, b, c, d = _face(500, 0, 60), _face(10, 300, 80), _face(200, 40, 100), _face(220, 10, 60)
    # centres x: a 530, b 50, c 250, d 250 (tie with c: d's centre y 40 < c's 90)
    kept, n_too_small = select_faces([a, b, c, d], min_face=40)
    assert n_too_small == 0
    assert [f is g for f, g in zip(kept, [b, d, c, a])] == [True] * 4


def test_select_faces_drops_and_counts_small_faces():
    faces = [_face(0, 0, 39.9), _face(100, 0, 40), _face(200, 0, 10),
             Face(box=np.array([300.0, 0, 310, 50]), score=0.9, keypoints=np.zeros((5, 2)))]
    kept, n_too_small = select_faces(faces, min_face=40)
    # the tall thin box counts by its longer side (50)
    assert n_too_small == 2 and [f.box[0] for f in kept] == [100, 300]
    assert select_faces([], 40) == ([], 0)


def test_select_faces_keeps_the_largest():
    faces = [_face(0, 0, 50), _face(100, 0, 300), _face(900, 0, 20), _face(600, 0, 120),
             _face(400, 0, 90)]
    kept, n_too_small = select_faces(faces, min_face=30, max_faces=2)
    assert n_too_small == 1
    assert [f.box[0] for f in kept] == [100, 600]  # the two largest, left to right
    kept, _ = select_faces(faces, min_face=30, max_faces=0)
    assert [f.box[0] for f in kept] == [0, 100, 400, 600]
    kept, _ = select_faces(faces, min_face=30, max_faces=10)
    assert len(kept) == 4
