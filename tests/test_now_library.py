"""util/now: NoW files, the crop, Procrustes, exact scan-to-mesh distances and the refinement,
each against an expectation computed another way in the test."""
import os
import re

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial

from synthetic.flame import make_mesh
from tests.make_fake_now import box_npy_bytes, pp_text
from util.now.align import apply, landmark_alignment, procrustes, refine
from util.now.crop import crop_scan, face_sphere
from util.now.distance import ScanDistance, SurfaceIndex
from util.now.evaluate import Scan, scan_to_mesh
from util.now.files import NowFormatError, read_box, read_image_list, read_landmarks, read_pp
from util.now.metrics import cumulative_curve, summarize


def rotation_about(axis, degrees):
    """Rodrigues' formula written out: rotation by ``degrees`` about ``axis``."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.radians(degrees)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


# --- reference: distance from points to triangles, the naive way ------------------------------

def _segment_distance(p, a, b):
    """(N,3) points, (N,3) segment ends -> (N,) distances (clamped projection)."""
    ab = b - a
    denom = np.maximum(np.sum(ab * ab, axis=1), 1e-300)
    t = np.clip(np.sum((p - a) * ab, axis=1) / denom, 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def naive_distance(points, vertices, faces):
    """(N,) distance from each point to the nearest of all triangles: the orthogonal
    projection onto the triangle's plane when it falls inside (barycentric weights >= 0),
    else the nearest of the three edges. Every pair is computed; no acceleration."""
    best = np.full(len(points), np.inf)
    for a, b, c in vertices[faces]:
        n = np.cross(b - a, c - a)
        area2 = np.dot(n, n)
        d = np.minimum(np.minimum(_segment_distance(points, a + 0 * points, b + 0 * points),
                                  _segment_distance(points, b + 0 * points, c + 0 * points)),
                       _segment_distance(points, c + 0 * points, a + 0 * points))
        if area2 > 1e-24:
            height = (points - a) @ n / area2
            foot = points - height[:, None] * n
            w_a = np.cross(c - b, foot - b) @ n / area2
            w_b = np.cross(a - c, foot - c) @ n / area2
            inside = (w_a >= 0) & (w_b >= 0) & (1 - w_a - w_b >= 0)
            d = np.where(inside, np.abs(height) * np.sqrt(area2), d)
        best = np.minimum(best, d)
    return best


# --- files -----------------------------------------------------------------------------------

def test_pp_file_read_as_meshlab_writes_it(tmp_path):
    points = np.random.default_rng(0).normal(scale=50.0, size=(7, 3))
    path = tmp_path / 'scan_picked_points.pp'
    path.write_text(pp_text(points, 'scan.obj'))
    # the official reader's way: lines 9-15, the x="..." y="..." z="..." attributes
    lines = path.read_text().splitlines()[8:15]
    expected = np.array([[float(re.search(r'\b%s="([^"]+)"' % axis, line).group(1))
                          for axis in 'xyz'] for line in lines], dtype=np.float32)
    got = read_pp(str(path))
    np.testing.assert_array_equal(got, expected.astype(np.float64))
    np.testing.assert_allclose(got, points, rtol=1e-6, atol=1e-5)
    # attributes in another order and no DOCTYPE still read the same
    reordered = re.sub(r'<point x="([^"]+)" y="([^"]+)" z="([^"]+)" active="1" name="(\d)"/>',
                       r'<point name="\4" active="1" z="\3" x="\1" y="\2"/>', path.read_text())
    path.write_text(reordered.replace('<!DOCTYPE PickedPoints>\n', ''))
    np.testing.assert_array_equal(read_pp(str(path)), got)
    path.write_text(pp_text(points[:6], 'scan.obj'))
    with pytest.raises(NowFormatError, match='6 picked points, expected 7'):
        read_pp(str(path))
    path.write_text('<PickedPoints><point x="1"')
    with pytest.raises(NowFormatError, match='not a readable MeshLab .pp'):
        read_pp(str(path))


def test_detected_face_box_read_without_running_code(tmp_path):
    path = tmp_path / 'IMG_0001.npy'
    path.write_bytes(box_npy_bytes((10.5, 20.0, 110.0, 140.25)))
    # the originals' readers: np.load with pickles allowed, latin1 for Python 2 pickles
    loaded = np.load(path, allow_pickle=True, encoding='latin1').item()
    assert (loaded['left'], loaded['top'], loaded['right'], loaded['bottom']) == \
        (10.5, 20.0, 110.0, 140.25)
    assert read_box(str(path)) == (10.5, 20.0, 110.0, 140.25)

    class Evil:
        def __reduce__(self):
            return (os.system, ('echo pwned',))
    header = tmp_path / 'evil.npy'
    np.save(header, np.array([Evil()], dtype=object), allow_pickle=True)
    with pytest.raises(NowFormatError, match='refusing to load'):
        read_box(str(header))
    np.save(tmp_path / 'list.npy', np.array({'left': 1}, dtype=object), allow_pickle=True)
    with pytest.raises(NowFormatError, match="'left', 'top', 'right', 'bottom'"):
        read_box(str(tmp_path / 'list.npy'))
    (tmp_path / 'flipped.npy').write_bytes(box_npy_bytes((100, 20, 10, 140)))
    with pytest.raises(NowFormatError, match='not a box'):
        read_box(str(tmp_path / 'flipped.npy'))


def test_image_list_and_prediction_landmarks(tmp_path):
    listing = tmp_path / 'imagepathsvalidation.txt'
    listing.write_text('FaMoS_1/selfie/IMG_1.jpg\n\nextra/FaMoS_2/multiview_neutral/IMG_2.JPG\n')
    entries = read_image_list(str(listing))
    assert [(e.subject, e.challenge, e.name) for e in entries] == [
        ('FaMoS_1', 'selfie', 'IMG_1'), ('FaMoS_2', 'multiview_neutral', 'IMG_2')]
    listing.write_text('IMG_1.jpg\n')
    with pytest.raises(NowFormatError, match=':1: expected subject/challenge/name.jpg'):
        read_image_list(str(listing))
    pts = np.arange(21.0).reshape(7, 3)
    np.save(tmp_path / 'a.npy', pts[None])                 # (1,7,3) is accepted
    np.testing.assert_array_equal(read_landmarks(str(tmp_path / 'a.npy')), pts)
    np.savetxt(tmp_path / 'b.txt', pts)
    np.testing.assert_array_equal(read_landmarks(str(tmp_path / 'b.txt')), pts)
    np.save(tmp_path / 'c.npy', pts[:5])
    with pytest.raises(NowFormatError, match=r'c.npy: landmarks of shape \(5, 3\)'):
        read_landmarks(str(tmp_path / 'c.npy'))
    (tmp_path / 'd.npy').write_bytes(b'not numpy')
    with pytest.raises(NowFormatError, match='d.npy: unreadable landmarks'):
        read_landmarks(str(tmp_path / 'd.npy'))


# --- crop ------------------------------------------------------------------------------------

def test_crop_sphere_from_hand_computed_landmarks():
    # outer eye corners 100 apart, inner ones at y = 40, nose bottom at the origin:
    # bridge (0, 40, 0), centre 30% up = (0, 12, 0), radius 1.4 * (100 + 40) / 2 = 98
    lmk = np.array([[-50, 40, 0], [-10, 40, 0], [10, 40, 0], [50, 40, 0], [0, 0, 0],
                    [-20, -20, 0], [20, -20, 0]], dtype=float)
    centre, radius = face_sphere(lmk)
    np.testing.assert_allclose(centre, [0, 12, 0])
    assert radius == pytest.approx(98.0)
    direction = np.array([0.6, 0.0, 0.8])
    inside = np.array([0, 12, 0]) + 97.99 * direction
    outside = np.array([0, 12, 0]) + 98.01 * direction
    kept = crop_scan(np.array([outside, inside, [0, 12, 0]]), lmk)
    np.testing.assert_array_equal(kept, [inside, [0, 12, 0]])


# --- Procrustes ------------------------------------------------------------------------------

def test_procrustes_is_the_closed_form_optimum():
    rng = np.random.default_rng(3)
    for trial in range(5):
        target = rng.normal(scale=30.0, size=(7, 3))
        source = rng.normal(size=(7, 3)) if trial < 2 else \
            (target @ rotation_about(rng.normal(size=3), 70).T) / 900.0 + rng.normal(size=3)
        source = source + rng.normal(scale=1e-3, size=source.shape)
        scale, rotation, translation = procrustes(target, source)
        aligned = apply((scale, rotation, translation), source)
        # scipy.spatial.procrustes: the standardized residual of the best similarity
        _, _, disparity = scipy.spatial.procrustes(target, source)
        residual = np.sum((target - aligned) ** 2) / np.sum((target - target.mean(0)) ** 2)
        assert residual == pytest.approx(disparity, rel=1e-9, abs=1e-12)
        # scipy.linalg.orthogonal_procrustes on the centred sets: same rotation and scale
        s0, t0 = source - source.mean(0), target - target.mean(0)
        r, singular_sum = scipy.linalg.orthogonal_procrustes(s0, t0)
        np.testing.assert_allclose(rotation, r.T, atol=1e-9)
        assert scale == pytest.approx(singular_sum / np.sum(s0 ** 2), rel=1e-9)


def test_procrustes_allows_a_reflection_and_fixed_scale():
    rng = np.random.default_rng(4)
    target = rng.normal(scale=30.0, size=(7, 3))
    mirrored = target * np.array([-1.0, 1.0, 1.0]) / 1000.0 + 5.0
    scale, rotation, translation = procrustes(target, mirrored)
    assert np.linalg.det(rotation) == pytest.approx(-1.0)
    np.testing.assert_allclose(apply((scale, rotation, translation), mirrored), target,
                               atol=1e-9)
    # metrical: the scale is the unit's; rotation as before, translation the best for it
    source = (target @ rotation_about([1, 2, 3], 40).T) / 10.0 + 7.0   # centimetres
    scale, rotation, translation = landmark_alignment(target, source, metrical_scale=10.0)
    assert scale == 10.0
    np.testing.assert_allclose(apply((scale, rotation, translation), source), target,
                               atol=1e-9)


# --- exact distances -------------------------------------------------------------------------

def _small_mesh(rng):
    """A bumpy 6 x 6 grid patch plus a few odd triangles: a degenerate one (two equal
    corners), a collinear one and a sliver."""
    x, y = np.meshgrid(np.linspace(0, 5, 6), np.linspace(0, 5, 6))
    v = np.stack([x.ravel(), y.ravel(), 0.4 * np.sin(x.ravel()) * np.cos(y.ravel())], 1)
    f = []
    for i in range(5):
        for j in range(5):
            a, b, c, d = i * 6 + j, i * 6 + j + 1, (i + 1) * 6 + j, (i + 1) * 6 + j + 1
            f += [(a, b, c), (b, d, c)]
    extra = np.array([[7, 7, 3], [7, 8, 2], [9, 9, 9], [1, 1.001, 8], [7.5, 1, 3]], float)
    odd = len(v) + np.arange(5)
    v = np.concatenate([v, extra])
    f += [(odd[0], odd[0], odd[1]), (odd[0], odd[2], odd[1]), (odd[3], odd[4], 0)]
    return v + rng.normal(scale=0.01, size=v.shape), np.array(f)


@pytest.mark.parametrize('cell_size', [0.05, 0.7, 5.0])
def test_distances_equal_brute_force_on_small_meshes(cell_size):
    rng = np.random.default_rng(5)
    vertices, faces = _small_mesh(rng)
    points = np.concatenate([rng.uniform(-2, 10, size=(400, 3)),                 # anywhere
                             vertices[faces[:20]].mean(1) + rng.normal(scale=0.05,
                                                                       size=(20, 3)),
                             vertices[:10]])                                     # on it
    index = SurfaceIndex(vertices, faces)
    query = ScanDistance(points, index, cell_size)
    dist, face, closest = query.distances()
    np.testing.assert_allclose(dist, naive_distance(points, vertices, faces), rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(points - closest, axis=1), dist, atol=1e-12)
    # the closest point lies on the triangle reported for it
    on_face = [naive_distance(closest[i:i + 1], vertices, faces[face[i]:face[i] + 1])[0]
               for i in range(len(points))]
    assert max(on_face) < 1e-9
    # the same scan against the mesh under similarities (the sets are reused where valid)
    for degrees, scale in ((3, 1.0), (4, 1.02), (60, 0.5)):
        rot = rotation_about([1, -2, 0.5], degrees)
        shift = np.array([0.3, -0.1, 0.2])
        dist, _, closest = query.distances(scale, rot, shift)
        moved = scale * vertices @ rot.T + shift
        np.testing.assert_allclose(dist, naive_distance(points, moved, faces), atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(points - closest, axis=1), dist,
                                   atol=1e-12)


def _surface_samples(vertices, faces, n, rng):
    tri = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    pick = rng.choice(len(faces), n, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(n)), rng.random(n)
    return ((1 - r1)[:, None] * tri[pick, 0] + (r1 * (1 - r2))[:, None] * tri[pick, 1]
            + (r1 * r2)[:, None] * tri[pick, 2])


def _face_landmark_ids(vertices):
    targets = np.array([[-0.045, 0.03, 0.1], [-0.015, 0.03, 0.11], [0.015, 0.03, 0.11],
                        [0.045, 0.03, 0.1], [0.0, -0.01, 0.12], [-0.025, -0.04, 0.1],
                        [0.025, -0.04, 0.1]])
    return np.array([np.argmin(np.linalg.norm(vertices - t, axis=1)) for t in targets])


@pytest.mark.parametrize('metrical', [False, True])
def test_refinement_recovers_a_known_similarity(metrical):
    """A noiseless scan of FLAME's surface under a known similarity, the prediction FLAME
    itself with landmarks 3 mm off: the refinement lands on the true transform."""
    rng = np.random.default_rng(6)
    vertices, faces = make_mesh()
    faces = faces.astype(np.int64)
    ids = _face_landmark_ids(vertices)
    true_scale = 10.0 if metrical else 1013.0       # cm -> mm, or any scale onto mm
    rotation = rotation_about([0.3, 1.0, -0.2], 25)
    shift = np.array([12.0, -40.0, 300.0])
    truth = (true_scale, rotation, shift)
    if metrical:
        vertices = vertices * 100.0                  # the prediction in centimetres
    samples = _surface_samples(vertices, faces, 20000, rng)
    scan_lmk = apply(truth, vertices[ids])
    scan = Scan(crop_scan(apply(truth, samples), scan_lmk), scan_lmk)
    offset = 0.003 * (100.0 if metrical else 1.0)
    pred_lmk = vertices[ids] + rng.normal(scale=offset, size=(7, 3))
    distances, (scale, rot, trans) = scan_to_mesh(
        scan, vertices, faces, pred_lmk, metrical_scale=10.0 if metrical else None)
    assert scale == pytest.approx(true_scale, rel=1e-7)
    np.testing.assert_allclose(rot, rotation, atol=1e-7)
    np.testing.assert_allclose(trans, shift, atol=1e-4)
    assert distances.max() < 1e-4                    # mm


def test_known_offset_surface_gives_the_known_error():
    """Points 0.7 mm outside the faces of a cube (same pattern on every face): with the scale
    fixed, no rigid motion brings the cube closer, so every distance is 0.7."""
    half, offset = 20.0, 0.7
    corners = np.array([[x, y, z] for x in (-half, half) for y in (-half, half)
                        for z in (-half, half)])
    hull = scipy.spatial.ConvexHull(corners)
    faces = hull.simplices.copy()
    u, w = np.meshgrid(np.linspace(-0.8, 0.8, 9), np.linspace(-0.8, 0.8, 9))
    grid = np.stack([u.ravel(), w.ravel()], 1) * half
    points = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            p = np.zeros((len(grid), 3))
            p[:, axis] = sign * (half + offset)
            p[:, [a for a in range(3) if a != axis]] = grid
            points.append(p)
    points = np.concatenate(points)
    lmk = np.array([[-30, 10, 0], [-5, 10, 0], [5, 10, 0], [30, 10, 0], [0, 0, 5],
                    [-10, -10, 0], [10, -10, 0]], float)
    scan = Scan(crop_scan(points, lmk), lmk)
    assert len(scan.vertices) == len(points)
    distances, (scale, rotation, translation) = scan_to_mesh(scan, corners, faces, lmk, 1.0)
    np.testing.assert_allclose(distances, offset, atol=1e-9)
    np.testing.assert_allclose(rotation, np.eye(3), atol=1e-9)
    summary = summarize([('selfie', distances)], ['selfie'])['overall']
    assert summary['median'] == pytest.approx(offset) and summary['mean'] == pytest.approx(offset)
    assert summary['std'] < 1e-9


def test_summary_pools_distances_and_counts_missing():
    rng = np.random.default_rng(7)
    a, b, c = rng.random(5), rng.random(9), rng.random(3)
    got = summarize([('selfie', a), ('multiview_neutral', None), ('selfie', b),
                     ('multiview_neutral', c)], ['multiview_neutral', 'selfie', 'absent'])
    pooled = np.concatenate([a, b, c])
    assert got['overall'] == {'median': np.median(pooled), 'mean': np.mean(pooled),
                              'std': np.std(pooled), 'images': 3, 'missing': 1}
    assert list(got) == ['overall', 'multiview_neutral', 'selfie']
    assert got['selfie']['median'] == np.median(np.concatenate([a, b]))
    assert got['multiview_neutral']['images'] == 1 and got['multiview_neutral']['missing'] == 1
    x, percent = cumulative_curve(pooled)
    for value, share in zip(x, percent):   # share of values <= x, in percent
        assert share == pytest.approx(100.0 * np.mean(pooled <= value))
    none = summarize([('selfie', None)], ['selfie'])['overall']
    assert none == {'median': None, 'mean': None, 'std': None, 'images': 0, 'missing': 1}

