"""util/project_on_mesh: vertex normals and the formats §7 texture, against per-texel Python loops."""
import numpy as np
import pytest

from util.face.camera import RenderCamera, render_camera
from util.face.preprocess import preprocess_image
from util.render.geometry import vertex_normals
from util.render.project_on_mesh import compute_texture_map
from util.io.safe_pickle import load_npy_dict, load_pickle


def reference_normals(v, faces):
    """Loop over faces: add cross(v1 - v0, v2 - v0) to each corner, then normalise."""
    n = np.zeros((len(v), 3))
    for a, b, c in faces:
        fn = np.cross(v[b] - v[a], v[c] - v[a])
        n[a] += fn
        n[b] += fn
        n[c] += fn
    return np.array([x / np.linalg.norm(x) if np.linalg.norm(x) > 0 else x for x in n])


def reference_texture(image, vertices, faces, cam, td):
    """Formats §7 one texel at a time."""
    size = td['img_size']
    texture = np.zeros((size, size, 3), np.uint8)
    normals = reference_normals(vertices, faces)
    h, w = image.shape[:2]
    for k, texel in enumerate(td['valid_pixel_ids']):
        tri = td['valid_pixel_3d_faces'][k]
        b = td['valid_pixel_b_coords'][k]
        point = sum(b[i] * vertices[tri[i]] for i in range(3))
        normal = sum(b[i] * normals[tri[i]] for i in range(3))
        if normal[2] > 0:
            continue
        X, Y, Z = point + cam.t
        x = round(cam.f * X / Z + cam.c[0])  # Python 3 round: half to even, like np.rint
        y = round(cam.f * Y / Z + cam.c[1])
        if 0 < x < w and 0 < y < h:
            texture[td['y_coords'][texel], td['x_coords'][texel]] = image[y, x]
    return texture


def bumpy_sphere(n_lat=10, n_lon=16, seed=0):
    """Closed, outward-wound, slightly irregular sphere of head size, faces (F,3)."""
    rng = np.random.default_rng(seed)
    verts = [(0., -1., 0.)]
    for i in range(1, n_lat):
        t = np.pi * i / n_lat
        for j in range(n_lon):
            p = 2 * np.pi * j / n_lon
            verts.append((np.sin(t) * np.cos(p), -np.cos(t), np.sin(t) * np.sin(p)))
    verts.append((0., 1., 0.))
    ring = lambda i, j: 1 + (i - 1) * n_lon + j % n_lon  # noqa: E731
    faces = []
    for j in range(n_lon):
        faces += [(0, ring(1, j), ring(1, j + 1)), (len(verts) - 1, ring(n_lat - 1, j + 1), ring(n_lat - 1, j))]
    for i in range(1, n_lat - 1):
        for j in range(n_lon):
            a, b, c, d = ring(i, j), ring(i, j + 1), ring(i + 1, j), ring(i + 1, j + 1)
            faces += [(a, c, b), (b, c, d)]
    v = np.array(verts) * 0.09 * (1 + rng.uniform(-0.05, 0.05, size=(len(verts), 1)))
    return v, np.array(faces)


def synthetic_texture_data(faces, size=40, n_valid=900, seed=1):
    rng = np.random.default_rng(seed)
    ys, xs = np.meshgrid(np.arange(size), np.arange(size), indexing='ij')
    ids = np.sort(rng.choice(size * size, n_valid, replace=False))
    return {'img_size': size, 'x_coords': xs.ravel(), 'y_coords': ys.ravel(), 'valid_pixel_ids': ids,
            'valid_pixel_3d_faces': faces[rng.integers(0, len(faces), n_valid)].astype(np.uint32),
            'valid_pixel_b_coords': rng.dirichlet(np.ones(3), n_valid)}


def test_vertex_normals_match_loop_and_point_outward():
    v, faces = bumpy_sphere()
    n = vertex_normals(v, faces)
    np.testing.assert_allclose(n, reference_normals(v, faces), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1)
    assert (np.sum(n * v, axis=1) > 0.9 * np.linalg.norm(v, axis=1)).all()


def test_vertex_normals_unused_vertex_is_zero():
    v = np.array([[0., 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5]])
    n = vertex_normals(v, [[0, 1, 2]])
    np.testing.assert_allclose(n[:3], [[0, 0, 1]] * 3)
    np.testing.assert_array_equal(n[3], 0)


@pytest.mark.parametrize('hw', [(120, 90), (300, 400)])
def test_texture_equals_per_texel_loop(hw):
    v, faces = bumpy_sphere(seed=hw[0])
    td = synthetic_texture_data(faces)
    image = np.random.default_rng(2).integers(0, 256, size=hw + (3,), dtype=np.uint8)
    _, proc_param = preprocess_image(image)
    cam = render_camera([12., 0.05, -0.03], proc_param)  # big enough to spill off the image edges
    texture = compute_texture_map(image, v, cam, td, faces)
    expected = reference_texture(image, v, faces, cam, td)
    assert texture.dtype == np.uint8 and texture.shape == (40, 40, 3)
    np.testing.assert_array_equal(texture, expected)
    written = expected.any(-1).sum()
    assert 100 < written < len(td['valid_pixel_ids'])  # some texels face away or fall outside


def test_only_camera_facing_side_is_textured():
    v, faces = bumpy_sphere()
    td = synthetic_texture_data(faces, n_valid=1600)
    image = np.full((224, 224, 3), 200, np.uint8)
    _, proc_param = preprocess_image(image)
    cam = render_camera([4., 0., 0.], proc_param)
    texture = compute_texture_map(image, v, cam, td, faces)
    centre_z = v[td['valid_pixel_3d_faces']].mean(1)[:, 2]
    hit = texture.reshape(-1, 3)[td['valid_pixel_ids']].any(-1)
    assert hit[centre_z < -0.03].all() and not hit[centre_z > 0.03].any()


def test_synthetic_flame_texture_matches_loop(flame_assets):
    model = load_pickle(flame_assets['flame_model'])
    td = load_npy_dict(flame_assets['texture_data'])
    keep = slice(None, None, 37)  # a spread-out subset keeps the Python loop fast
    td = dict(td, valid_pixel_ids=td['valid_pixel_ids'][keep],
              valid_pixel_3d_faces=td['valid_pixel_3d_faces'][keep],
              valid_pixel_b_coords=td['valid_pixel_b_coords'][keep])
    v = model['v_template'] * np.array([1., -1., -1.])  # FLAME frame -> image orientation (y down, face to -z)
    image = np.random.default_rng(3).integers(0, 256, size=(256, 200, 3), dtype=np.uint8)
    _, proc_param = preprocess_image(image)
    cam = render_camera([7., 0., 0.], proc_param)
    texture = compute_texture_map(image, v, cam, td, model['f'])
    np.testing.assert_array_equal(texture, reference_texture(image, v, model['f'], cam, td))
    assert texture.any()


def test_bounds_are_strict_and_rounding_is_half_to_even():
    # One camera-facing triangle at Z = 1 seen by f = 10, c = 0: vertex (X, Y) lands on (10X, 10Y).
    v = np.array([[0., 0.5, 1.], [0.5, 0.5, 1.], [0.5, 0., 1.], [0.95, 0.25, 1.]])
    faces = np.array([[0, 1, 2], [1, 3, 2]])
    corners = np.array([[0, 1, 2]] * 4 + [[1, 3, 2]])
    bary = np.array([[1., 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0], [0, 1, 0]])
    # Texel k sits at (x=k, y=0). Projections: (0, 5) out (x = 0); (5, 5) in; (5, 0) out (y = 0);
    # (2.5, 5) rounds to (2, 5) (half to even) in; (9.5, 2.5) rounds to (10, 2): out (x = W).
    td = {'img_size': 8, 'x_coords': np.arange(64) % 8, 'y_coords': np.arange(64) // 8,
          'valid_pixel_ids': np.arange(5), 'valid_pixel_3d_faces': corners, 'valid_pixel_b_coords': bary}
    image = np.random.default_rng(0).integers(0, 256, size=(10, 10, 3), dtype=np.uint8)
    cam = RenderCamera(f=10., c=np.zeros(2), t=np.zeros(3))
    texture = compute_texture_map(image, v, cam, td, faces)
    expected = np.zeros((8, 8, 3), np.uint8)
    expected[0, 1] = image[5, 5]
    expected[0, 3] = image[5, 2]
    np.testing.assert_array_equal(texture, expected)
