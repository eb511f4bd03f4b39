"""The original's render camera (docs/formats.md §4): weak perspective -> a far perspective
camera in original-image pixels."""
import collections

import numpy as np

RenderCamera = collections.namedtuple('RenderCamera', 'f c t')
RenderCamera.__doc__ = """f: focal length (original-image pixels); c: (2,) principal point (x, y);
t: (3,) translation (tx, ty, tz) that moves predicted vertices into camera coordinates."""


def render_camera(cam, proc_param, img_size=None, flength=50000.):
    """cam (3,) = (s, tx, ty) in the crop's normalised coordinates -> RenderCamera.

    tz = flength / (0.5 * img_size * s) makes the perspective projection of the shifted
    vertices equal the weak-perspective one up to a relative error of Z / tz. The crop's
    principal point (img_size/2, img_size/2) is moved by the crop corner and undone by the
    scale to land in the original image. img_size defaults to proc_param['img_size'].
    """
    if img_size is None:
        img_size = proc_param['img_size']
    s, tx, ty = (float(x) for x in np.asarray(cam, dtype=np.float64).reshape(3))
    scale = float(proc_param['scale'])
    half = 0.5 * img_size
    tz = flength / (half * s)
    principal = np.array([half, half])
    start_pt = np.asarray(proc_param['start_pt'], dtype=np.float64) - half
    return RenderCamera(f=flength / scale, c=(principal + start_pt) / scale, t=np.array([tx, ty, tz]))


def to_camera(v, cam):
    """(V,3) predicted vertices -> (V,3) camera coordinates (shift by cam.t)."""
    return np.asarray(v, dtype=np.float64) + cam.t


def project(v_cam, f, c):
    """(...,3) camera coordinates -> (...,2) pixels: u = f * X / Z + c (no rotation, no distortion)."""
    v_cam = np.asarray(v_cam, dtype=np.float64)
    return f * v_cam[..., :2] / v_cam[..., 2:3] + np.asarray(c, dtype=np.float64)


def image_weak_perspective(cam, scale, offset, img_size):
    """cam (N,3) = (s, tx, ty) of crops cut at ``scale`` (N,) and ``offset`` (N,2) (a crop
    pixel u shows input pixel (u + offset) / scale) -> (N,3) (a, bx, by), the same camera in
    input pixels: x = a * X + bx, y = a * Y + by for a vertex (X, Y, Z) (docs/formats.md §2,
    §4: a = (img_size / 2) s / scale, b = (a t + (img_size / 2 + offset) / scale))."""
    cam = np.asarray(cam, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)[:, None]
    half = 0.5 * img_size
    a = half * cam[:, :1] / scale
    return np.concatenate([a, a * cam[:, 1:] + (half + np.asarray(offset)) / scale], axis=1)


def crop_weak_perspective(image_cam, scale, offset, img_size):
    """The inverse of image_weak_perspective: (N,3) (a, bx, by) in input pixels -> cam (N,3)
    (s, tx, ty) of the crops cut at ``scale`` (N,) and ``offset`` (N,2)."""
    image_cam = np.asarray(image_cam, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)[:, None]
    half = 0.5 * img_size
    a = image_cam[:, :1]
    t = (image_cam[:, 1:] - (half + np.asarray(offset)) / scale) / a
    return np.concatenate([a * scale / half, t], axis=1)
