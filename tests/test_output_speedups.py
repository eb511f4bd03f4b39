"""The faster output paths give exactly what the plain formulations give: OBJ text (compiled
'%.9g' / '%.17g'), PNG bytes (Python's zlib instead of libpng), vertex normals and lighting
(numba, same floating-point operations), the 4-panel figure (one rasterization shared by two
panels) and the texture projection (no gathered copies)."""
import cv2
import numpy as np
import pytest

from synthetic.flame import make_mesh, make_texture_data, make_uv
from util.face.camera import RenderCamera, project, to_camera
from util.render.geometry import vertex_normals
from util.io import image_io, png
from util.io.image_io import encode_image
from util.io.float_format import float_rows
from util.io.mesh_io import ObjTopology, vertex_text
from util.render.project_on_mesh import compute_texture_map
from util.render.renderer import (_LIGHT_TURN_DEG, _LIGHTS, draw_points, four_panel,
                           lambertian_colors, render_mesh, rotate_y, y_rotation)


# ---------------------------------------------------------------- OBJ text

def naive_rows(prefix, values, precision):
    fmt = '%%.%dg' % precision
    return ''.join(prefix + ' '.join(fmt % x for x in row) + '\n'
                   for row in np.asarray(values).tolist())


def naive_obj(v, f, vt=None, ft=None, mtl=None):
    precision = 9 if v.dtype == np.float32 else 17
    text = 'mtllib %s\nusemtl material_0\n' % mtl if mtl else ''
    text += naive_rows('v ', v, precision)
    if vt is None:
        return text + ''.join('f %d %d %d\n' % tuple(row + 1) for row in f)
    text += naive_rows('vt ', vt, 17)
    return text + ''.join('f %d/%d %d/%d %d/%d\n' % (a + 1, ta + 1, b + 1, tb + 1, c + 1, tc + 1)
                          for (a, b, c), (ta, tb, tc) in zip(f, ft))


def edge_values(precision):
    """Values where '%g' formatting is easy to get wrong."""
    values = [0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1e-4, 1e-5, 9.999999999e-5, 0.0001000001,
              5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308, 1e-300,
              123456789.0, 1e8, 99999999.5, 12345678.9, 3.0, 1200.0, 1.5e-10, 7e15,
              2.0 ** -14, 3 * 2.0 ** -14, 2.0 ** -25, 3 * 2.0 ** -25, 2.0 ** -149,
              1234567890123456.75, 1234567890123456.25, 1234567890123457.5,
              0.30000000000000004, 1 / 3, 2 / 3, np.pi, 1e16, 9999999999999998.0]
    for k in range(-320, precision):  # powers of ten and their neighbours
        p = float('1e%d' % k)
        values += [p, np.nextafter(p, 0), np.nextafter(p, np.inf)]
    values = np.array(values)
    return np.concatenate([values, -values])


@pytest.mark.parametrize('dtype,precision', [(np.float64, 17), (np.float32, 9)])
def test_float_rows_match_percent_g_on_edge_values(dtype, precision):
    values = edge_values(precision).astype(dtype)
    values = values[np.abs(values) < 10.0 ** precision]
    values = values[:len(values) // 3 * 3].reshape(-1, 3)
    assert float_rows('v ', values) == naive_rows('v ', values, precision)


@pytest.mark.parametrize('dtype,precision', [(np.float64, 17), (np.float32, 9)])
def test_float_rows_match_percent_g_on_random_values(dtype, precision):
    rng = np.random.default_rng(precision)
    bits = rng.integers(-2 ** 63, 2 ** 63 - 1, size=60000, dtype=np.int64, endpoint=True)
    spread = bits.view(np.float64)  # every exponent
    scaled = rng.standard_normal(60000) * 10.0 ** rng.integers(-40, 20, 60000)
    scale = 10.0 ** rng.integers(0, 12, 30000)  # few decimals: trailing zeros to drop
    rounded = np.round(rng.standard_normal(30000) * 1e4 * scale) / scale
    for values in (spread, scaled, rounded):
        values = values[np.isfinite(values) & (np.abs(values) < 10.0 ** precision)]
        values = values.astype(dtype)  # float32: below 1e9, no overflow
        values = values[:len(values) // 3 * 3].reshape(-1, 3)
        assert float_rows('v ', values) == naive_rows('v ', values, precision)


def test_float_rows_leave_inf_nan_and_huge_values_to_python():
    for bad in (np.inf, -np.inf, np.nan, 1e17, -1e300, 1.7976931348623157e308):
        values = np.array([[0.5, bad, -2.0], [1e-7, 3.0, 4.0]])
        assert float_rows('v ', values) == naive_rows('v ', values, 17)
    values = np.array([[1e9, np.float32(np.nan), 1.0]], dtype=np.float32)
    assert float_rows('v ', values) == naive_rows('v ', values, 9)
    assert float_rows('v ', np.zeros((0, 3))) == ''
    assert float_rows('vt ', np.array([[0.25, 1.0]])) == 'vt 0.25 1\n'


def test_obj_text_matches_plain_formatting_and_reuses_vertex_text():
    v, f = make_mesh()
    vt, ft = make_uv()
    rng = np.random.default_rng(0)
    v32 = (v + rng.standard_normal(v.shape) * 1e-3).astype(np.float32)
    plain, textured = ObjTopology(f), ObjTopology(f, vt, ft)
    for verts in (v, v32):
        lines = vertex_text(verts)
        assert lines == naive_rows('v ', verts, 9 if verts.dtype == np.float32 else 17)
        assert plain.obj_text(verts) == naive_obj(verts, f)
        assert plain.obj_text(verts, vertex_lines=lines) == naive_obj(verts, f)
        expected = naive_obj(verts, f, vt, ft, 'head.mtl')
        assert textured.obj_text(verts, 'head.mtl') == expected
        assert textured.obj_text(verts, 'head.mtl', vertex_lines=lines) == expected


# ---------------------------------------------------------------- PNG

def cv2_png(rgb):
    ok, data = cv2.imencode('.png', np.ascontiguousarray(np.asarray(rgb)[..., ::-1]))
    assert ok
    return data.tobytes()


def png_images():
    rng = np.random.default_rng(3)
    yield rng.integers(0, 256, (250, 1000, 3), dtype=np.uint8)
    yield np.zeros((512, 512, 3), np.uint8)
    yield np.full((300, 200, 3), 255, np.uint8)
    ramp = (np.arange(640)[None, :, None] * np.array([1, 3, 7]) + np.arange(120)[:, None, None])
    yield (ramp % 256).astype(np.uint8)
    for shape in [(7, 9, 3), (50, 109, 3), (60, 91, 3), (6000, 1, 3), (1, 6000, 3),
                  (3000, 2, 3), (2, 4000, 3), (0, 5, 3)]:
        if 0 in shape:
            continue
        yield rng.integers(0, 256, shape, dtype=np.uint8)
    for seed in range(40):
        r = np.random.default_rng(seed)
        h, w = r.integers(1, 260, 2)
        image = np.zeros((h, w, 3), np.uint8)
        image[r.integers(0, h):, r.integers(0, w):] = r.integers(0, 256, 3)
        image[:r.integers(0, h)] = r.integers(0, 3, (1, w, 3)) * 120
        yield image


def test_encode_image_png_bytes_equal_cv2s():
    for rgb in png_images():
        assert encode_image(rgb) == cv2_png(rgb), rgb.shape
    view = next(png_images())[10:200:2, 5:900:3]  # not contiguous
    assert encode_image(view) == cv2_png(view)


def test_python_png_writer_agrees_with_cv2_here():
    if not png.matches_cv2():
        pytest.skip("this zlib deflates differently from cv2's: cv2 writes every PNG")
    used = 0
    for rgb in png_images():
        data = png.png_bytes(np.ascontiguousarray(rgb))
        if data is not None:
            used += 1
            assert data == cv2_png(rgb), rgb.shape
    assert used >= 20


def test_encode_image_without_the_python_writer_and_other_formats(monkeypatch):
    rgb = next(png_images())
    monkeypatch.setattr(png, 'matches_cv2', lambda: False)
    assert encode_image(rgb) == cv2_png(rgb)
    ok, jpg = cv2.imencode('.jpg', np.ascontiguousarray(rgb[..., ::-1]))
    assert encode_image(rgb, '.jpg') == jpg.tobytes()
    with pytest.raises(image_io.ImageError):
        encode_image(np.zeros((0, 4, 3), np.uint8))


# ---------------------------------------------------------------- geometry and rendering

def numpy_vertex_normals(v, faces):
    """The NumPy formulation (np.cross, np.bincount per corner, np.linalg.norm)."""
    v = np.asarray(v, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    tri = v[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(v)
    for k in range(3):
        for c in range(3):
            normals[:, c] += np.bincount(faces[:, k], weights=face_n[:, c], minlength=len(v))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(length > 0, length, 1.0)


def numpy_lambertian(v_cam, faces, color=(0.651, 0.741, 0.859)):
    v_cam = np.asarray(v_cam, dtype=np.float64)
    normals = numpy_vertex_normals(v_cam, faces)
    turn = y_rotation(_LIGHT_TURN_DEG)
    shade = np.zeros(len(v_cam))
    for position, intensity in _LIGHTS:
        to_light = np.asarray(position) @ turn - v_cam
        to_light /= np.linalg.norm(to_light, axis=1, keepdims=True)
        shade += intensity * np.maximum(np.sum(normals * to_light, axis=1), 0.)
    return np.clip(shade[:, None] * np.asarray(color, dtype=np.float64), 0., 1.)


def same_bits(a, b):
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True) and \
        np.array_equal(np.signbit(a), np.signbit(b))


def head_camera():
    v, f = make_mesh()
    v = v * np.array([1., -1., -1.])  # FLAME frame -> image orientation
    return v, f, RenderCamera(f=1500., c=np.array([160., 120.]), t=np.array([0., 0., 2.5]))


def test_vertex_normals_and_lighting_are_bit_identical_to_numpy():
    v, f, cam = head_camera()
    v_cam = to_camera(v, cam)
    assert same_bits(vertex_normals(v_cam, f), numpy_vertex_normals(v_cam, f))
    assert same_bits(lambertian_colors(v_cam, f), numpy_lambertian(v_cam, f))
    rng = np.random.default_rng(5)
    for trial in range(60):
        n = int(rng.integers(3, 200))
        pts = rng.standard_normal((n, 3)) * 10.0 ** rng.integers(-6, 6) + [0., 0., 3.]
        faces = rng.integers(0, n, (int(rng.integers(1, 400)), 3))
        if trial % 4 == 0:
            pts[rng.integers(0, n)] = np.nan
        if trial % 5 == 0:
            faces[0] = [1, 1, 2]  # degenerate
        assert same_bits(vertex_normals(pts, faces), numpy_vertex_normals(pts, faces))
        assert same_bits(lambertian_colors(pts, faces), numpy_lambertian(pts, faces))
    with pytest.raises(IndexError):
        vertex_normals(np.zeros((3, 3)), [[0, 1, 3]])


def separate_renders_panel(image, meshes, faces, points=()):
    """four_panel as three render_mesh calls per mesh (each rasterizing on its own)."""
    height, width = image.shape[:2]
    overlay, front, turned = image, None, None
    for vertices, cam in meshes:
        v_cam = to_camera(vertices, cam)
        colors = numpy_lambertian(v_cam, faces)
        overlay = render_mesh(v_cam, faces, cam.f, cam.c, height, width, overlay, colors=colors)
        front = render_mesh(v_cam, faces, cam.f, cam.c, height, width, front, colors=colors)
        turned = render_mesh(rotate_y(v_cam, 30.), faces, cam.f, cam.c, height, width, turned,
                             colors=numpy_lambertian(rotate_y(v_cam, 30.), faces))
    for pts in points:
        extent = np.ptp(np.asarray(pts, dtype=np.float64), axis=0).max()
        overlay = draw_points(overlay, pts, max(1, round(extent / 80)))
    return np.concatenate((image, overlay, front, turned), axis=1)


def test_four_panel_equals_separate_renders():
    v, f, cam = head_camera()
    image = np.random.default_rng(2).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    other = RenderCamera(f=1200., c=np.array([200., 100.]), t=np.array([0.02, 0.01, 2.8]))
    meshes = [(v, cam), (v * 1.05, other)]
    pts = [project(to_camera(v[::500], cam), cam.f, cam.c)]
    for chosen in ([meshes[0]], meshes):
        assert np.array_equal(four_panel(image, chosen, f, pts),
                              separate_renders_panel(image, chosen, f, pts))


# ---------------------------------------------------------------- texture

def gathered_texture(image, vertices, cam, td, faces):
    """The texture projection with the texel rows / columns gathered first, in NumPy."""
    vertices = np.asarray(vertices, dtype=np.float64)
    normals = numpy_vertex_normals(vertices, faces)
    tri = np.asarray(td['valid_pixel_3d_faces'], dtype=np.int64)
    w = np.asarray(td['valid_pixel_b_coords'], dtype=np.float64)
    ids = np.asarray(td['valid_pixel_ids'], dtype=np.int64)
    rows, cols = np.asarray(td['y_coords'])[ids], np.asarray(td['x_coords'])[ids]
    facing = (w[:, 0] * normals[tri[:, 0], 2] + w[:, 1] * normals[tri[:, 1], 2]
              + w[:, 2] * normals[tri[:, 2], 2]) <= 0
    point = [w[:, 0] * vertices[tri[:, 0], k] + w[:, 1] * vertices[tri[:, 1], k]
             + w[:, 2] * vertices[tri[:, 2], k] + cam.t[k] for k in range(3)]
    x = np.rint(cam.f * point[0] / point[2] + cam.c[0])
    y = np.rint(cam.f * point[1] / point[2] + cam.c[1])
    height, width = image.shape[:2]
    keep = facing & (0 < x) & (x < width) & (0 < y) & (y < height)
    texture = np.zeros((td['img_size'], td['img_size'], 3), np.uint8)
    texture[rows[keep], cols[keep]] = image[y[keep].astype(int), x[keep].astype(int)]
    return texture


def test_texture_equals_gathered_numpy_version():
    v, f, cam = head_camera()
    vt, ft = make_uv()
    td = make_texture_data({'vt': vt, 'ft': ft, 'f': f}, 128)
    image = np.random.default_rng(4).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    texture = compute_texture_map(image, v, cam, td, f)
    assert texture.any()
    assert np.array_equal(texture, gathered_texture(image, v, cam, td, f))
    bad = dict(td, valid_pixel_ids=np.asarray(td['valid_pixel_ids']) + len(td['x_coords']))
    with pytest.raises(IndexError):
        compute_texture_map(image, v, cam, bad, f)
