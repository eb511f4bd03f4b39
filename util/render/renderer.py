"""Headless z-buffer mesh renderer (numba) and the original demo's 4-panel figure (docs/formats.md §4).

Camera coordinates: x right, y down, z forward (the camera sits at the origin looking along +z),
so a surface facing the camera has normal z < 0. Pixel (x, y) samples the image-plane point
(x, y): pixel centres are at integer coordinates, as for u = f * X / Z + c.
"""
import cv2
import numba
import numpy as np

from util.face.camera import RenderCamera, project, to_camera
from util.render.geometry import vertex_normals

LIGHT_BLUE = (0.651, 0.741, 0.859)
# (position, colour) of the original's three point lights, before their 120 degree turn about y.
# Formats §4 gives no turn direction; we use HMR's renderer (positions @ R_y(120), see
# y_rotation), which puts two lights in front of a camera-facing surface and one behind.
_LIGHTS = (((-200., -100., -100.), 1.0), ((800., 10., 300.), 1.0), ((-500., 500., 1000.), 0.7))
_LIGHT_TURN_DEG = 120.
# Panels of larger inputs are drawn at this longer side (4 panels of a 12000-pixel photo would
# take gigabytes); parameters, meshes and textures keep their exact values.
MAX_PANEL_SIDE = 2048


@numba.njit(cache=True)
def _edge_coefficients(v2d, i, j):
    """(a, b, c) with a*x + b*y + c = cross(v_j - v_i, p - v_i) for p = (x, y).

    Computed from the endpoints in index order (and negated when i > j), so the two triangles
    sharing an edge get exactly opposite values at every pixel: none on it is missed by both.
    """
    lo, hi, sign = (i, j, 1.0) if i < j else (j, i, -1.0)
    dx = v2d[hi, 0] - v2d[lo, 0]
    dy = v2d[hi, 1] - v2d[lo, 1]
    return -sign * dy, sign * dx, sign * (dy * v2d[lo, 0] - dx * v2d[lo, 1])


@numba.njit(cache=True)
def _rasterize_kernel(v2d, z, faces, face_id, bary, zbuf):
    """Fill face_id (H,W), bary (H,W,3), zbuf (H,W) in place; see rasterize."""
    height, width = face_id.shape
    for f in range(faces.shape[0]):
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        if z[i0] <= 0.0 or z[i1] <= 0.0 or z[i2] <= 0.0:
            continue
        # Edge k is opposite vertex k; its edge function is the (unnormalised) barycentric k.
        a0, b0, c0 = _edge_coefficients(v2d, i1, i2)
        a1, b1, c1 = _edge_coefficients(v2d, i2, i0)
        a2, b2, c2 = _edge_coefficients(v2d, i0, i1)
        area = a2 * v2d[i2, 0] + (b2 * v2d[i2, 1] + c2)
        if area == 0.0 or not np.isfinite(area):
            continue
        if area < 0.0:  # either winding: flip all signs (exactly) so inside means >= 0
            a0, b0, c0, a1, b1, c1, a2, b2, c2 = -a0, -b0, -c0, -a1, -b1, -c1, -a2, -b2, -c2
            area = -area
        # 1/z is affine in screen space: weights w_k / z_k give perspective-correct depth and
        # barycentrics (q_k folds in the 1/area normalisation).
        q0, q1, q2 = 1.0 / (area * z[i0]), 1.0 / (area * z[i1]), 1.0 / (area * z[i2])
        xs = (v2d[i0, 0], v2d[i1, 0], v2d[i2, 0])
        ys = (v2d[i0, 1], v2d[i1, 1], v2d[i2, 1])
        # Clip in float before int() so far-off vertices cannot overflow the pixel range.
        x_lo = int(max(np.ceil(min(xs[0], xs[1], xs[2])), 0.0))
        x_hi = int(min(np.floor(max(xs[0], xs[1], xs[2])), width - 1.0))
        y_lo = int(max(np.ceil(min(ys[0], ys[1], ys[2])), 0.0))
        y_hi = int(min(np.floor(max(ys[0], ys[1], ys[2])), height - 1.0))
        for y in range(y_lo, y_hi + 1):
            r0, r1, r2 = b0 * y + c0, b1 * y + c1, b2 * y + c2
            for x in range(x_lo, x_hi + 1):
                w0, w1, w2 = a0 * x + r0, a1 * x + r1, a2 * x + r2
                if w0 < 0.0 or w1 < 0.0 or w2 < 0.0:
                    continue
                p0, p1, p2 = w0 * q0, w1 * q1, w2 * q2
                depth = 1.0 / (p0 + p1 + p2)
                if depth < zbuf[y, x]:
                    zbuf[y, x] = depth
                    face_id[y, x] = f
                    bary[y, x, 0] = p0 * depth
                    bary[y, x, 1] = p1 * depth
                    bary[y, x, 2] = p2 * depth


@numba.njit(cache=True)
def _shade_kernel(face_id, bary, faces, vertex_rgb, out):
    """out[y, x] = round(255 * sum_k bary_k * vertex_rgb[faces[f, k]]) where face_id = f >= 0."""
    height, width = face_id.shape
    for y in range(height):
        for x in range(width):
            f = face_id[y, x]
            if f < 0:
                continue
            for ch in range(3):
                value = 0.0
                for k in range(3):
                    value += bary[y, x, k] * vertex_rgb[faces[f, k], ch]
                out[y, x, ch] = np.uint8(min(max(value * 255.0 + 0.5, 0.0), 255.0))


def rasterize(v2d, z, faces, height, width):
    """Z-buffer rasterization of triangles of either winding.

    v2d (V,2) pixel coordinates (x, y); z (V,) camera depth, > 0 in front of the camera
    (faces with a vertex at z <= 0 are dropped); faces (F,3) int; pixel (x, y) is covered when
    the point (x, y) lies inside or on the triangle, and the nearest triangle wins.
    -> face_id (H,W) int32 (-1 = background), bary (H,W,3) float32 perspective-correct
    barycentric weights of the face's three vertices.
    """
    v2d = np.ascontiguousarray(v2d, dtype=np.float64).reshape(-1, 2)
    z = np.ascontiguousarray(z, dtype=np.float64).reshape(-1)
    faces = np.ascontiguousarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(z) != len(v2d):
        raise ValueError('rasterize: %d 2-d vertices but %d depths' % (len(v2d), len(z)))
    if faces.size and (faces.min() < 0 or faces.max() >= len(v2d)):
        raise ValueError('rasterize: face indices outside [0, %d)' % len(v2d))
    face_id = np.full((height, width), -1, dtype=np.int32)
    bary = np.zeros((height, width, 3), dtype=np.float32)
    zbuf = np.full((height, width), np.inf)
    _rasterize_kernel(v2d, z, faces, face_id, bary, zbuf)
    return face_id, bary


def y_rotation(degrees):
    """(3,3) matrix R for the row-vector convention v' = v @ R (the original's, after HMR)."""
    a = np.radians(degrees)
    return np.array([[np.cos(a), 0., np.sin(a)], [0., 1., 0.], [-np.sin(a), 0., np.cos(a)]])


def rotate_y(v, degrees, center=None):
    """(V,3) -> (V,3) turned by ``degrees`` about the y axis through ``center`` (default: centroid)."""
    v = np.asarray(v, dtype=np.float64)
    center = v.mean(axis=0) if center is None else np.asarray(center, dtype=np.float64)
    return (v - center) @ y_rotation(degrees) + center


@numba.njit(cache=True)
def _lambert_shade_kernel(v, normals, light_pos, light_intensity, shade):
    """shade[i] = sum over lights of intensity * max(0, n_i . unit(light - v_i)), with the
    floating-point operations of the NumPy formulation in its order (norms and dot products
    as x*x + y*y, then + z*z; np.maximum's NaN and -0.0 handling; lights summed in order)."""
    for i in range(v.shape[0]):
        total = 0.0
        for j in range(light_pos.shape[0]):
            tx = light_pos[j, 0] - v[i, 0]
            ty = light_pos[j, 1] - v[i, 1]
            tz = light_pos[j, 2] - v[i, 2]
            length = np.sqrt((tx * tx + ty * ty) + tz * tz)
            tx /= length
            ty /= length
            tz /= length
            dot = (normals[i, 0] * tx + normals[i, 1] * ty) + normals[i, 2] * tz
            if not (dot >= 0.0 or dot != dot):
                dot = 0.0
            total += light_intensity[j] * dot
        shade[i] = total


def _light_positions():
    """(3,3) light positions in camera coordinates (each ``position @ turn``, as before) and
    (3,) intensities."""
    turn = y_rotation(_LIGHT_TURN_DEG)
    return (np.array([np.asarray(position) @ turn for position, _ in _LIGHTS]),
            np.array([intensity for _, intensity in _LIGHTS], dtype=np.float64))


def lambertian_colors(v_cam, faces, color=LIGHT_BLUE):
    """(V,3) camera-space vertices -> (V,3) colours in [0, 1] under the original's three lights.

    Per light: albedo * light colour * max(0, n . l), with n the outward area-weighted vertex
    normal and l the unit vector from the vertex to the light (lights are in camera
    coordinates); summed over lights, then clipped. Single-sided like OpenDR's
    LambertianPointLight: with outward winding the camera-facing side is the lit one.
    """
    v_cam = np.ascontiguousarray(v_cam, dtype=np.float64)
    if v_cam.ndim != 2 or v_cam.shape[1] != 3:
        raise ValueError('lambertian_colors: expected (V,3) vertices, got %s' % (v_cam.shape,))
    normals = vertex_normals(v_cam, faces)
    shade = np.empty(len(v_cam))
    _lambert_shade_kernel(v_cam, np.ascontiguousarray(normals), *_light_positions(), shade)
    return np.clip(shade[:, None] * np.asarray(color, dtype=np.float64), 0., 1.)


def _rasterize_mesh(v_cam, faces, f, c, height, width):
    """render_mesh's rasterization: -> face_id, bary (see rasterize)."""
    return rasterize(project(v_cam, f, c), v_cam[:, 2], faces, height, width)


def _paint(face_id, bary, faces, colors, background, height, width):
    """render_mesh's shading of a rasterized mesh over ``background`` (None: white)."""
    if background is None:
        out = np.full((height, width, 3), 255, dtype=np.uint8)
    else:
        out = np.array(background, dtype=np.uint8, copy=True)
        if out.shape != (height, width, 3):
            raise ValueError('render_mesh: background %s is not (%d, %d, 3)' % (out.shape, height, width))
    _shade_kernel(face_id, bary, faces, colors, out)
    return out


def render_mesh(v_cam, faces, f, c, height, width, background=None, color=LIGHT_BLUE,
                colors=None):
    """Lit mesh over ``background`` (H,W,3) uint8 (white when None) -> (H,W,3) uint8.

    v_cam (V,3) camera coordinates; faces (F,3); f focal length and c (2,) principal point in
    pixels of the (height, width) image. Vertex colours are interpolated with the barycentrics;
    ``colors`` (V,3) in [0, 1] are used as given, else lambertian_colors(v_cam, faces, color).
    """
    v_cam = np.asarray(v_cam, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    face_id, bary = _rasterize_mesh(v_cam, faces, f, c, height, width)
    if colors is None:
        colors = lambertian_colors(v_cam, faces, color)
    return _paint(face_id, bary, faces, colors, background, height, width)


def fit_to_side(image, cams, max_side):
    """(H,W,3) uint8 image and [util.face.camera.RenderCamera] for it -> the image with its longer
    side at most ``max_side`` (area-averaged), and the cameras mapped to the smaller image
    (scale_to_side). Images within the limit are returned unchanged."""
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image, list(cams)
    return scale_to_side(image, cams, max_side)


def scale_to_side(image, cams, side):
    """(H,W,3) uint8 image and [RenderCamera] for it -> the image with its longer side ``side``
    (area-averaged when smaller, bilinear when larger) and the cameras mapped to it.

    Pixel centres sit at integer coordinates, so a coordinate x becomes (x + 0.5) * k - 0.5
    for the per-axis factor k = new size / old size; the focal length scales by the factor of
    the longer side.
    """
    height, width = image.shape[:2]
    k = side / max(height, width)
    size = (max(1, round(width * k)), max(1, round(height * k)))  # cv2 dsize is (w, h)
    scaled = cv2.resize(image, size, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    factors = np.array([size[0] / width, size[1] / height])
    return scaled, [RenderCamera(f=cam.f * k, c=(np.asarray(cam.c) + 0.5) * factors - 0.5,
                                 t=cam.t) for cam in cams]


def box_view(image, cam, box):
    """(H,W,3) uint8 image, its RenderCamera and a box (x0, y0, x1, y1) in its pixels -> the
    box's pixels (white where the box leaves the image) and the camera for them (the
    principal point moved by the box's corner, rounded out to whole pixels)."""
    height, width = image.shape[:2]
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    x1, y1 = max(int(np.ceil(box[2])), x0 + 1), max(int(np.ceil(box[3])), y0 + 1)
    view = np.full((y1 - y0, x1 - x0, 3), 255, dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if sx1 > sx0 and sy1 > sy0:
        view[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return view, RenderCamera(f=cam.f, c=np.asarray(cam.c, dtype=np.float64) - (x0, y0),
                              t=cam.t)


def draw_points(image, points, radius=1, color=(255, 64, 64)):
    """(H,W,3) uint8 image, (K,2) pixel coordinates (x, y) -> a copy with a dot of ``radius``
    pixels at each point (anti-aliased, sub-pixel centres); points far outside are skipped."""
    out = np.array(image, dtype=np.uint8, copy=True)
    shift = 4  # cv2 fixed point: centres in 1/16 px
    for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2):
        if np.isfinite(x) and np.isfinite(y) and abs(x) < 1e6 and abs(y) < 1e6:
            cv2.circle(out, (int(round(x * 16)), int(round(y * 16))), int(radius) << shift,
                       color, -1, cv2.LINE_AA, shift)
    return out


def four_panel(image, meshes, faces, points=()):
    """(H,W,3) uint8 image, meshes [(vertices (V,3) as predicted, util.face.camera.RenderCamera for
    that image)], faces (F,3) -> (H,4W,3) uint8: input | meshes over input | meshes on white |
    each mesh turned 30 degrees about y around its own centroid, on white.

    Several meshes (one per detected face) are drawn one after the other, each over what the
    previous ones left (their cameras differ, so depths are not comparable across meshes).
    points: [(K,2) pixels] drawn as dots on the overlay panel (one set per face's landmarks),
    each with a radius of about 1/80 of the set's extent.
    """
    image = np.asarray(image, dtype=np.uint8)
    height, width = image.shape[:2]
    overlay, front, turned = image, None, None
    faces = np.asarray(faces, dtype=np.int64)
    for vertices, cam in meshes:
        v_cam = np.asarray(to_camera(vertices, cam), dtype=np.float64)
        # both unrotated panels: one rasterization and one set of colours, painted twice
        # (render_mesh(v_cam, ...) over each background, without doing its work twice)
        colors = lambertian_colors(v_cam, faces)
        face_id, bary = _rasterize_mesh(v_cam, faces, cam.f, cam.c, height, width)
        overlay = _paint(face_id, bary, faces, colors, overlay, height, width)
        front = _paint(face_id, bary, faces, colors, front, height, width)
        turned = render_mesh(rotate_y(v_cam, 30.), faces, cam.f, cam.c, height, width,
                             background=turned)
    if front is None:  # no mesh: plain white panels
        front = turned = np.full_like(image, 255)
    return np.concatenate((image, draw_landmark_sets(overlay, points), front, turned), axis=1)


def draw_landmark_sets(image, points):
    """(H,W,3) uint8 image, points [(K,2) pixels] (one set per face) -> a copy with each set's
    dots drawn, with a radius of about 1/80 of the set's extent."""
    for pts in points:
        extent = np.ptp(np.asarray(pts, dtype=np.float64).reshape(-1, 2), axis=0).max(initial=0)
        image = draw_points(image, pts, max(1, round(extent / 80)) if np.isfinite(extent)
                            else 1)
    return image


def overlay_panel(image, meshes, faces, points=()):
    """four_panel's second panel alone, at the image's size: (H,W,3) uint8 image, meshes
    [(vertices (V,3), util.face.camera.RenderCamera)], faces (F,3), points [(K,2)] -> (H,W,3) uint8
    with every mesh drawn over the image (a video frame's overlay)."""
    overlay = np.asarray(image, dtype=np.uint8)
    height, width = overlay.shape[:2]
    for vertices, cam in meshes:
        overlay = render_mesh(to_camera(vertices, cam), faces, cam.f, cam.c, height, width,
                              background=overlay)
    return draw_landmark_sets(overlay, points)
