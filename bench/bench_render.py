"""Time the renderer, the texture projection and the output encoders (ms per call after
warm-up; the best of 5 rounds, as other processes share the machine).

python -m bench.bench_render [--repeat N]

The output section puts each faster path next to the plain formulation it replaced (same
bytes / bits): Python's '%g' formatting of OBJ vertices, cv2's PNG encoder after a NumPy
channel flip, and the NumPy vertex normals.
"""
import argparse
import time

import cv2
import numpy as np

from synthetic.flame import make_mesh, make_texture_data, make_uv
from util.face.camera import RenderCamera, project, render_camera, to_camera
from util.render.geometry import _vertex_normals_numpy, vertex_normals
from util.io.image_io import encode_image
from util.io.float_format import format_rows
from util.io.mesh_io import ObjTopology, vertex_text
from util.face.preprocess import preprocess_image
from util.render.project_on_mesh import compute_texture_map
from util.render.renderer import four_panel, rasterize, render_mesh


def grid_sphere(n_lat, n_lon, radius=1.0):
    """(V,3), (F,3) closed sphere with 2 * n_lon * (n_lat - 1) faces."""
    t = np.pi * np.arange(1, n_lat) / n_lat
    p = 2 * np.pi * np.arange(n_lon) / n_lon
    ring = np.stack([np.sin(t)[:, None] * np.cos(p), -np.cos(t)[:, None] + 0 * p,
                     np.sin(t)[:, None] * np.sin(p)], -1).reshape(-1, 3)
    v = radius * np.concatenate([[[0., -1., 0.]], ring, [[0., 1., 0.]]])
    ids = 1 + np.arange((n_lat - 1) * n_lon).reshape(n_lat - 1, n_lon)
    nxt = np.roll(ids, -1, axis=1)
    top = np.stack([np.zeros(n_lon, int), ids[0], nxt[0]], 1)
    bottom = np.stack([np.full(n_lon, len(v) - 1), nxt[-1], ids[-1]], 1)
    band = np.concatenate([np.stack([ids[:-1], ids[1:], nxt[:-1]], -1),
                           np.stack([nxt[:-1], ids[1:], nxt[1:]], -1)]).reshape(-1, 3)
    return v, np.concatenate([top, band, bottom])


def ms_per_call(fn, repeat, rounds=5):
    fn()  # warm-up (JIT compile or load from the on-disk cache)
    best = np.inf
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return 1000. * best


def plain_vertex_text(v):
    """The vertex lines as Python's %-formatting writes them (what vertex_text replaced)."""
    fmt = '%.9g' if v.dtype == np.float32 else '%.17g'
    return format_rows('v %s %s %s\n' % (fmt, fmt, fmt), v)


def cv2_png(rgb):
    """encode_image's former PNG path: a NumPy BGR copy, then cv2.imencode."""
    return cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]))[1].tobytes()


def bench_outputs(head, head_faces, vt, ft, panel, texture, repeat):
    """Per-image output costs, before (plain formulation) -> after."""
    rng = np.random.default_rng(2)
    v32 = (head + rng.standard_normal(head.shape) * 1e-3).astype(np.float32)  # a prediction
    v64 = head + rng.standard_normal(head.shape) * 1e-3                       # neutral mesh
    plain, textured = ObjTopology(head_faces), ObjTopology(head_faces, vt, ft)

    def obj_before():  # mesh, neutral mesh, textured mesh (each formats its vertices)
        for v, topo, mtl in ((v32, plain, None), (v64, plain, None), (v32, textured, 'a.mtl')):
            header = 'mtllib %s\nusemtl material_0\n' % mtl if mtl else ''
            (header + plain_vertex_text(v) + topo.text).encode()

    def obj_after():  # the prediction's vertex text formatted once, reused
        lines = vertex_text(v32)
        plain.obj_text(v32, vertex_lines=lines).encode()
        plain.obj_text(v64).encode()
        textured.obj_text(v32, 'a.mtl', vertex_lines=lines).encode()

    rows = [('vertex text float32 (%d vertices)' % len(head),
             lambda: plain_vertex_text(v32), lambda: vertex_text(v32)),
            ('vertex text float64', lambda: plain_vertex_text(v64), lambda: vertex_text(v64)),
            ('obj text, 3 OBJs per image', obj_before, obj_after),
            ('png %dx%d panel' % panel.shape[1::-1], lambda: cv2_png(panel),
             lambda: encode_image(panel)),
            ('png %dx%d texture' % texture.shape[1::-1], lambda: cv2_png(texture),
             lambda: encode_image(texture)),
            ('vertex normals', lambda: _vertex_normals_numpy(head, head_faces),
             lambda: vertex_normals(head, head_faces))]
    print('outputs (before -> after, ms):')
    for name, before, after in rows:
        print('  %-34s %7.2f -> %6.2f' % (name, ms_per_call(before, repeat),
                                           ms_per_call(after, repeat)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=20)
    repeat = parser.parse_args(argv).repeat

    v, faces = grid_sphere(71, 71)
    v_cam = v + np.array([0., 0., 4.])
    f, c, size = 900., (256., 256.), 512
    v2d = project(v_cam, f, c)
    image = np.random.default_rng(0).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    print('sphere: %d vertices, %d triangles, %dx%d' % (len(v), len(faces), size, size))
    print('  rasterize    %7.2f ms' % ms_per_call(lambda: rasterize(v2d, v_cam[:, 2], faces, size, size), repeat))
    print('  render_mesh  %7.2f ms' % ms_per_call(lambda: render_mesh(v_cam, faces, f, c, size, size), repeat))
    print('  four_panel   %7.2f ms' % ms_per_call(lambda: four_panel(image, [(v, RenderCamera(f, np.array(c), np.array([0., 0., 4.])))], faces), repeat))

    head, head_faces = make_mesh()
    head = head * np.array([1., -1., -1.])  # FLAME frame -> image orientation
    image = np.random.default_rng(1).integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    _, proc_param = preprocess_image(image)
    cam = render_camera([7., 0., 0.], proc_param)
    head_cam = to_camera(head, cam)
    print('synthetic FLAME head: %d vertices, %d triangles, 640x480' % (len(head), len(head_faces)))
    print('  render_mesh  %7.2f ms' % ms_per_call(
        lambda: render_mesh(head_cam, head_faces, cam.f, cam.c, 480, 640), repeat))
    print('  four_panel   %7.2f ms' % ms_per_call(
        lambda: four_panel(image, [(head, cam)], head_faces), repeat))
    vt, ft = make_uv()
    td = make_texture_data({'vt': vt, 'ft': ft, 'f': head_faces}, 512)
    print('  texture (%d texels of 512^2) %7.2f ms' % (len(td['valid_pixel_ids']), ms_per_call(
        lambda: compute_texture_map(image, head, cam, td, head_faces), repeat)))

    small = image[:250, :250]
    panel = four_panel(small, [(head, render_camera([7., 0., 0.], preprocess_image(small)[1]))],
                       head_faces)
    bench_outputs(head, head_faces, vt, ft, panel,
                  compute_texture_map(image, head, cam, td, head_faces), repeat)


if __name__ == '__main__':
    main()
