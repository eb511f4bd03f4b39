"""util/camera + util/renderer: projection vs the weak-perspective formula, silhouettes vs a naive
point-in-triangle fill, occlusion, perspective-correct barycentrics and the Lambertian colour."""
import cv2
import numpy as np
import pytest

from util.face.camera import project, render_camera, to_camera
from util.face.preprocess import preprocess_image
from util.render.renderer import LIGHT_BLUE, four_panel, rasterize, render_mesh, rotate_y

IMG_SIZE = 224


def uv_sphere(radius=1.0, n_lat=12, n_lon=24):
    """(V,3), (F,3) closed sphere, faces wound so cross(v1-v0, v2-v0) points outward."""
    verts = [(0., -radius, 0.)]
    for i in range(1, n_lat):
        theta = np.pi * i / n_lat
        for j in range(n_lon):
            phi = 2 * np.pi * j / n_lon
            verts.append((radius * np.sin(theta) * np.cos(phi), -radius * np.cos(theta),
                          radius * np.sin(theta) * np.sin(phi)))
    verts.append((0., radius, 0.))
    ring = lambda i, j: 1 + (i - 1) * n_lon + j % n_lon  # noqa: E731
    faces = []
    for j in range(n_lon):
        faces.append((0, ring(1, j), ring(1, j + 1)))
        faces.append((len(verts) - 1, ring(n_lat - 1, j + 1), ring(n_lat - 1, j)))
    for i in range(1, n_lat - 1):
        for j in range(n_lon):
            a, b, c, d = ring(i, j), ring(i, j + 1), ring(i + 1, j), ring(i + 1, j + 1)
            faces += [(a, c, b), (b, c, d)]
    verts, faces = np.array(verts), np.array(faces)
    tri = verts[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    if np.mean(np.sum(n * tri.mean(1), axis=1)) < 0:
        faces = faces[:, ::-1]
    return verts, faces


def naive_fill(v2d, faces, height, width):
    """(H,W) bool: pixel (x, y) covered when the point (x, y) lies in some projected triangle."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    mask = np.zeros((height, width), bool)
    for tri in v2d[faces]:
        (x0, y0), (x1, y1), (x2, y2) = tri
        det = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
        if det == 0:
            continue
        a = ((y1 - y2) * (xs - x2) + (x2 - x1) * (ys - y2)) / det
        b = ((y2 - y0) * (xs - x2) + (x0 - x2) * (ys - y2)) / det
        mask |= (a >= -1e-9) & (b >= -1e-9) & (1 - a - b >= -1e-9)
    return mask


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def weak_perspective_original(v, cam, proc_param):
    """Formats §2/§3: crop pixel (x_ndc + 1) / 2 * 224, back to the original image."""
    s, tx, ty = cam
    ndc = s * (v[:, :2] + np.array([tx, ty]))
    crop_px = (ndc + 1) / 2 * IMG_SIZE
    return (crop_px + np.asarray(proc_param['start_pt']) - IMG_SIZE / 2) / proc_param['scale']


def head_like(seed=0):
    """A sphere of FLAME-head size in network coordinates and a plausible RingNet camera."""
    v, f = uv_sphere(radius=0.09)
    v = v * np.array([0.8, 1.0, 0.9])
    cam = np.array([7.5, 0.012, -0.02]) + np.random.default_rng(seed).normal(0, [0.5, 0.01, 0.01])
    return v, f, cam


@pytest.mark.parametrize('hw', [(150, 97), (480, 640), (224, 224), (701, 333)])
def test_camera_projection_equals_weak_perspective(hw):
    img = np.zeros(hw + (3,), np.uint8)
    _, proc_param = preprocess_image(img, IMG_SIZE)
    v, _, cam = head_like()
    rc = render_camera(cam, proc_param, IMG_SIZE)
    assert rc.f == pytest.approx(50000. / proc_param['scale'])
    assert rc.t[2] == pytest.approx(50000. / (0.5 * IMG_SIZE * cam[0]))
    flat = v * np.array([1., 1., 0.])  # Z = 0: perspective == weak perspective exactly
    np.testing.assert_allclose(project(to_camera(flat, rc), rc.f, rc.c),
                               weak_perspective_original(flat, cam, proc_param), atol=1e-3)
    # With depth the difference is bounded by |Z| / tz of the distance from the image of the origin.
    ours = project(to_camera(v, rc), rc.f, rc.c)
    ref = weak_perspective_original(v, cam, proc_param)
    assert np.abs(ours - ref).max() < 1.0 / proc_param['scale']


def test_render_camera_defaults_img_size_from_proc_param():
    _, proc_param = preprocess_image(np.zeros((300, 200, 3), np.uint8), IMG_SIZE)
    a = render_camera([8., 0.1, 0.2], proc_param)
    b = render_camera([8., 0.1, 0.2], proc_param, IMG_SIZE)
    assert a.f == b.f and np.array_equal(a.c, b.c) and np.array_equal(a.t, b.t)


@pytest.mark.parametrize('hw', [(150, 97), (480, 640), (120, 200)])
def test_silhouette_and_position_on_original_image(hw):
    height, width = hw
    _, proc_param = preprocess_image(np.zeros((height, width, 3), np.uint8), IMG_SIZE)
    v, faces, cam = head_like(seed=height)
    rc = render_camera(cam, proc_param, IMG_SIZE)
    v_cam = to_camera(v, rc)
    face_id, bary = rasterize(project(v_cam, rc.f, rc.c), v_cam[:, 2], faces, height, width)
    expected = naive_fill(weak_perspective_original(v, cam, proc_param), faces, height, width)
    mask = face_id >= 0
    assert iou(mask, expected) >= 0.99
    # The silhouette's bbox sits where the weak-perspective projection puts the vertices
    # (clipped to the image: on narrow images the head overflows the sides).
    px = np.clip(weak_perspective_original(v, cam, proc_param), 0, [width - 1, height - 1])
    # Covered pixel centres lie inside it (0.2 px: perspective vs weak perspective) and reach
    # within 1.5 px of each side (a polygon tip can fall between two pixel centres).
    ys, xs = np.nonzero(mask)
    for got, want in ((xs, px[:, 0]), (ys, px[:, 1])):
        assert want.min() - 0.2 <= got.min() <= want.min() + 1.5
        assert want.max() - 1.5 <= got.max() <= want.max() + 0.2
    assert np.allclose(bary[mask].sum(-1), 1, atol=1e-5) and (bary[mask] >= 0).all()


def test_small_triangle_lands_on_its_projection():
    _, proc_param = preprocess_image(np.zeros((180, 130, 3), np.uint8), IMG_SIZE)
    cam = np.array([6.0, 0.03, 0.01])
    tri = np.array([[0.01, 0.02, 0.], [0.016, 0.02, 0.], [0.01, 0.026, 0.]])
    rc = render_camera(cam, proc_param, IMG_SIZE)
    v_cam = to_camera(tri, rc)
    face_id, _ = rasterize(project(v_cam, rc.f, rc.c), v_cam[:, 2], [[0, 1, 2]], 180, 130)
    px = weak_perspective_original(tri, cam, proc_param)
    assert (face_id == 0).sum() >= 3
    # Z = 0: the render camera's projection equals the weak perspective, so the covered pixels
    # are exactly the pixel centres inside the weak-perspective triangle.
    np.testing.assert_array_equal(face_id == 0, naive_fill(px, np.array([[0, 1, 2]]), 180, 130))


def test_random_triangles_either_winding_match_naive_fill():
    rng = np.random.default_rng(3)
    v2d = rng.uniform(-10, 90, size=(60, 2))
    faces = rng.integers(0, 60, size=(40, 3))
    face_id, _ = rasterize(v2d, np.ones(60), faces, 70, 80)
    expected = naive_fill(v2d, faces, 70, 80)
    assert iou(face_id >= 0, expected) >= 0.99
    flipped, _ = rasterize(v2d, np.ones(60), faces[:, ::-1], 70, 80)
    np.testing.assert_array_equal(flipped >= 0, face_id >= 0)


def test_shared_edge_through_pixel_centres_leaves_no_hole():
    # A square split along a diagonal that passes exactly through pixel centres (k, k).
    v2d = np.array([[0.5, 0.5], [10.5, 0.5], [10.5, 10.5], [0.5, 10.5]])
    face_id, _ = rasterize(v2d, np.ones(4), [[0, 1, 2], [0, 2, 3]], 12, 12)
    assert (face_id[1:11, 1:11] >= 0).all() and (face_id >= 0).sum() == 100


def test_nearer_triangle_wins_in_either_order():
    near = np.array([[0., 0., 2.], [1., 0., 2.], [0., 1., 2.]])
    far = np.array([[-.2, -.2, 3.], [1.5, -.2, 3.], [-.2, 1.5, 3.]])
    f, c = 40., (10., 10.)
    for order in ((near, far), (far, near)):
        v = np.concatenate(order)
        face_id, _ = rasterize(project(v, f, c), v[:, 2], [[0, 1, 2], [3, 4, 5]], 40, 40)
        near_id = 0 if order[0] is near else 1
        assert face_id[12, 12] == near_id and face_id[10, 10] == near_id
        assert face_id[8, 20] == 1 - near_id  # only the far one reaches there


def test_perspective_correct_barycentrics_reconstruct_the_pixel():
    v = np.array([[-1., -0.5, 2.], [1.5, -0.2, 6.], [0.2, 1.2, 3.]])
    f, c = 60., np.array([30., 25.])
    face_id, bary = rasterize(project(v, f, c), v[:, 2], [[0, 1, 2]], 50, 60)
    ys, xs = np.nonzero(face_id == 0)
    points = bary[ys, xs].astype(np.float64) @ v
    np.testing.assert_allclose(project(points, f, c), np.stack([xs, ys], 1), atol=1e-3)


def test_faces_behind_the_camera_and_bad_indices():
    v = np.array([[0., 0., -1.], [1., 0., 1.], [0., 1., 1.]])
    face_id, _ = rasterize(project(v, 10., (5., 5.)), v[:, 2], [[0, 1, 2]], 10, 10)
    assert (face_id == -1).all()
    with pytest.raises(ValueError):
        rasterize(np.zeros((3, 2)), np.ones(3), [[0, 1, 3]], 4, 4)


def rotated_lights():
    """Formats §4 lights turned 120 degrees about y (row vectors times R_y, as cv2.Rodrigues gives)."""
    r = cv2.Rodrigues(np.array([0., np.radians(120.), 0.]))[0]
    return [(np.array(p) @ r, col) for p, col in
            (((-200, -100, -100), 1.0), ((800, 10, 300), 1.0), ((-500, 500, 1000), 0.7))]


def test_lit_colour_of_camera_facing_triangle():
    # Normal cross(v1 - v0, v2 - v0) = (0, 0, -s): facing the camera.
    v = np.array([[-0.5, -0.5, 3.], [-0.5, 1.0, 3.], [1.0, -0.5, 3.]])
    f, c, size = 40., np.array([32., 32.]), 64
    img = render_mesh(v, [[0, 1, 2]], f, c, size, size)
    normal = np.array([0., 0., -1.])
    vcol = []
    for p in v:
        total = sum(col * max(0., normal @ ((lp - p) / np.linalg.norm(lp - p))) for lp, col in rotated_lights())
        vcol.append(np.clip(total * np.array(LIGHT_BLUE), 0, 1))
    v2d = project(v, f, c)
    checked = 0
    for y in range(size):
        for x in range(size):
            (x0, y0), (x1, y1), (x2, y2) = v2d
            det = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
            a = ((y1 - y2) * (x - x2) + (x2 - x1) * (y - y2)) / det
            b = ((y2 - y0) * (x - x2) + (x0 - x2) * (y - y2)) / det
            if min(a, b, 1 - a - b) > 1e-6:
                expected = np.round((a * vcol[0] + b * vcol[1] + (1 - a - b) * vcol[2]) * 255)
                assert np.abs(img[y, x].astype(int) - expected).max() <= 1
                checked += 1
            elif min(a, b, 1 - a - b) < -1e-6:
                assert tuple(img[y, x]) == (255, 255, 255)
    assert checked > 150
    assert img[30, 30].mean() > 100  # the camera-facing side is lit, not black


def test_sphere_front_is_lit_and_overlay_keeps_background():
    v, faces = uv_sphere(radius=1.0)
    v_cam = v + np.array([0., 0., 5.])
    bg = np.random.default_rng(0).integers(0, 256, size=(60, 80, 3), dtype=np.uint8)
    out = render_mesh(v_cam, faces, 60., (40., 30.), 60, 80, background=bg)
    face_id, _ = rasterize(project(v_cam, 60., (40., 30.)), v_cam[:, 2], faces, 60, 80)
    np.testing.assert_array_equal(out[face_id < 0], bg[face_id < 0])
    assert out[face_id >= 0].mean() > 60  # an inward-facing normal would leave it nearly black


def test_rotate_y_about_centroid():
    v = np.random.default_rng(1).normal(size=(20, 3))
    r = rotate_y(v, 30.)
    np.testing.assert_allclose(r.mean(0), v.mean(0), atol=1e-12)
    rodrigues = cv2.Rodrigues(np.array([0., np.radians(30.), 0.]))[0]
    np.testing.assert_allclose(r, (v - v.mean(0)) @ rodrigues + v.mean(0), atol=1e-12)
    np.testing.assert_allclose(r[:, 1], v[:, 1])


HMR_LIGHT_BLUE = np.array([0.651, 0.741, 0.859])  # the original's mesh colour (formats §4)


def pinhole(v_cam, f, c):
    """u = f * X / Z + c, written out here (not util.face.camera.project)."""
    return np.stack([f * v_cam[:, 0] / v_cam[:, 2] + c[0], f * v_cam[:, 1] / v_cam[:, 2] + c[1]], 1)


def naive_lambertian(v_cam, faces):
    """(V,3) colours: light blue times the sum over the three lights of max(0, n . l).

    n: outward area-weighted vertex normal accumulated face by face in a Python loop; l: unit
    vector from the vertex to the light (rotated_lights, built with cv2.Rodrigues)."""
    normals = np.zeros_like(v_cam)
    for i0, i1, i2 in faces:
        n = np.cross(v_cam[i1] - v_cam[i0], v_cam[i2] - v_cam[i0])
        for i in (i0, i1, i2):
            normals[i] += n
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    lights = rotated_lights()
    colours = []
    for p, n in zip(v_cam, normals):
        total = sum(col * max(0., n @ ((lp - p) / np.linalg.norm(lp - p))) for lp, col in lights)
        colours.append(np.clip(total * HMR_LIGHT_BLUE, 0, 1))
    return np.array(colours)


def naive_zbuffer(v_cam, faces, f, c, height, width, vcol):
    """Reference render, one triangle at a time over all pixel centres.

    -> covered (H,W) bool, interior (H,W) bool (every screen barycentric of the nearest
    triangle > 1e-3, so no tie with a neighbour), expected (H,W,3) uint8 colours
    round(255 * perspective-correct interpolation of vcol), face_normal_z (H,W) of the
    nearest triangle (cross(v1 - v0, v2 - v0), z < 0 faces the camera)."""
    v2d = pinhole(v_cam, f, c)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    zbuf = np.full((height, width), np.inf)
    weights = np.zeros((height, width, 3))
    min_bary = np.zeros((height, width))
    nearest = np.full((height, width), -1)
    for k, (i0, i1, i2) in enumerate(faces):
        (x0, y0), (x1, y1), (x2, y2) = v2d[[i0, i1, i2]]
        det = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
        if det == 0:
            continue
        a = ((y1 - y2) * (xs - x2) + (x2 - x1) * (ys - y2)) / det
        b = ((y2 - y0) * (xs - x2) + (x0 - x2) * (ys - y2)) / det
        g = 1 - a - b
        inside = (a >= -1e-9) & (b >= -1e-9) & (g >= -1e-9)
        # 1/Z is affine in screen space; the weights a_k / Z_k, renormalised, are the
        # barycentrics of the 3-d point seen through the pixel.
        wa, wb, wg = a / v_cam[i0, 2], b / v_cam[i1, 2], g / v_cam[i2, 2]
        depth = 1.0 / (wa + wb + wg)
        win = inside & (depth < zbuf)
        zbuf[win] = depth[win]
        weights[win] = np.stack([wa, wb, wg], -1)[win] * depth[win, None]
        min_bary[win] = np.minimum(np.minimum(a, b), g)[win]
        nearest[win] = k
    covered = nearest >= 0
    expected = np.zeros((height, width, 3), np.uint8)
    tri_col = vcol[faces[nearest[covered]]]                                  # (N,3,3)
    expected[covered] = np.round(255 * np.einsum('nk,nkc->nc', weights[covered], tri_col))
    tri = v_cam[faces]
    normal_z = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])[:, 2]
    face_normal_z = np.where(covered, normal_z[nearest], np.nan)
    return covered, covered & (min_bary > 1e-3), expected, face_normal_z


def test_four_panel_layout():
    height, width = 90, 70
    _, proc_param = preprocess_image(np.zeros((height, width, 3), np.uint8), IMG_SIZE)
    v, faces, cam = head_like()
    rc = render_camera(cam, proc_param, IMG_SIZE)
    img = np.random.default_rng(2).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    panel = four_panel(img, [(v, rc)], faces)
    assert panel.shape == (height, 4 * width, 3) and panel.dtype == np.uint8
    p0, p1, p2, p3 = (panel[:, k * width:(k + 1) * width] for k in range(4))
    np.testing.assert_array_equal(p0, img)

    # Independent expectations: shift by t, pinhole projection, rotation about the centroid
    # from cv2.Rodrigues (row vectors, as in test_rotate_y_about_centroid), naive z-buffer.
    v_cam = np.asarray(v, np.float64) + np.asarray(rc.t)
    turn = cv2.Rodrigues(np.array([0., np.radians(30.), 0.]))[0]
    v_turned = (v_cam - v_cam.mean(0)) @ turn + v_cam.mean(0)
    front = naive_zbuffer(v_cam, faces, rc.f, rc.c, height, width, naive_lambertian(v_cam, faces))
    turned = naive_zbuffer(v_turned, faces, rc.f, rc.c, height, width,
                           naive_lambertian(v_turned, faces))
    covered, interior, _, normal_z = front
    assert 0.1 * height * width < covered.sum() < 0.9 * height * width  # mesh and background

    # Silhouettes: what differs from the background.
    sil1 = (p1 != img).any(-1)
    sil2 = (p2 != 255).any(-1)
    sil3 = (p3 != 255).any(-1)
    assert iou(sil1, covered) >= 0.99
    assert iou(sil2, covered) >= 0.99
    assert iou(sil3, turned[0]) >= 0.99
    # Outside the silhouette (grown by a pixel for edge ties): the input, resp. pure white.
    grown = cv2.dilate(covered.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    np.testing.assert_array_equal(p1[~grown], img[~grown])
    assert (p2[~grown] == 255).all()
    grown3 = cv2.dilate(turned[0].astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert (p3[~grown3] == 255).all()

    # Inside: the same shading over either background, and the lit colour of the nearest surface.
    assert interior.sum() > 0.8 * covered.sum()
    assert (normal_z[interior] < 0).all()  # a closed convex mesh: what is seen faces the camera
    np.testing.assert_array_equal(p1[interior], p2[interior])
    for got, (_, inner, want, _) in ((p2, front), (p3, turned)):
        assert np.abs(got[inner].astype(int) - want[inner]).max() <= 1
        assert want[inner].mean() > 60  # lit, not black: the comparison means something
    assert not np.array_equal(p2, p3)
    common = interior & turned[1]
    assert np.abs(p2[common].astype(int) - p3[common]).max() > 5  # turning changes the shading
