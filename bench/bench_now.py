"""Seconds per image of the NoW evaluation on one core, and the distance methods compared.

A NoW-sized scan (--scan_points vertices after the crop, default 100k: a dense noisy sampling
of the synthetic FLAME's face in millimetres under a random similarity) against a FLAME-sized
prediction (the synthetic FLAME: 5023 vertices, ~10k faces, perturbed, in metres). Prints:
  - one distance evaluation at a fixed pose: trimesh's proximity query (needs rtree; run on a
    subset and scaled), nearest vertex only (cKDTree, not the protocol: for scale), per-point
    cKDTree candidates + numba kernel, and ours (cells of points, exact): time and the largest
    deviation from ours;
  - the whole per-image evaluation (Procrustes, refinement, final distances; the scan read
    and crop happen once per subject and are timed apart), wall and CPU seconds.

Usage: python -m bench.bench_now [--scan_points 100000] [--repeats 5]
"""
import argparse
import os
import sys
import time

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMBA_NUM_THREADS'):
    os.environ.setdefault(_var, '1')  # one core, as the goal states

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from synthetic.flame import make_mesh  # noqa: E402
from util.now.align import landmark_alignment, procrustes, refine  # noqa: E402
from util.now.crop import crop_scan, face_sphere  # noqa: E402
from util.now.distance import (ScanDistance, SurfaceIndex,  # noqa: E402
                               closest_on_candidates)
from util.now.evaluate import CELL_PER_RADIUS, Scan, scan_to_mesh  # noqa: E402

def surface_samples(vertices, faces, n, rng):
    """n points uniformly distributed over the mesh's area -> (n,3)."""
    tri = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    pick = rng.choice(len(faces), n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    return ((1 - s)[:, None] * tri[pick, 0] + (s * (1 - r2))[:, None] * tri[pick, 1]
            + (s * r2)[:, None] * tri[pick, 2])


def landmark_ids(vertices):
    """7 vertex ids standing in for NoW's landmarks (eye corners, nose bottom, mouth
    corners), picked by position on the synthetic head (face toward +z, y up, metres)."""
    targets = np.array([[-0.045, 0.03, 0.1], [-0.015, 0.03, 0.11], [0.015, 0.03, 0.11],
                        [0.045, 0.03, 0.1], [0.0, -0.01, 0.12], [-0.025, -0.04, 0.1],
                        [0.025, -0.04, 0.1]])
    return np.array([np.argmin(np.linalg.norm(vertices - t, axis=1)) for t in targets])


def make_case(n_points, seed=0):
    """-> (scan Scan in mm, prediction vertices (V,3) m, faces (F,3), landmarks (7,3) m)."""
    rng = np.random.default_rng(seed)
    v, f = make_mesh()
    f = f.astype(np.int64)
    ids = landmark_ids(v)
    # the scan: FLAME's surface in mm under a similarity, noisy; crop it like NoW
    from scipy.spatial.transform import Rotation
    rotation = Rotation.from_rotvec(rng.normal(size=3) * 0.3).as_matrix()
    scale, shift = 1000.0, rng.normal(size=3) * 50.0
    scan_lmk = scale * v[ids] @ rotation.T + shift
    centre, radius = face_sphere(scan_lmk)
    points = np.zeros((0, 3))
    batch = 4 * n_points
    while len(points) < n_points:
        pts = scale * surface_samples(v, f, batch, rng) @ rotation.T + shift
        pts = crop_scan(pts, scan_lmk)
        points = np.concatenate([points, pts])
    points = points[:n_points] + rng.normal(scale=0.3, size=(n_points, 3))
    # the prediction: another face (scaled, bumpy) with slightly wrong landmarks
    pred = v * 1.03 + 0.0008 * np.sin(40.0 * v[:, [1, 2, 0]])
    pred_lmk = pred[ids] + rng.normal(scale=0.002, size=(7, 3))
    return Scan(points, scan_lmk), pred, f, pred_lmk


def timed(fn, repeats):
    """(median wall seconds, median CPU seconds, last result) over ``repeats`` calls."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return float(np.median(walls)), float(np.median(cpus)), out


def per_point_candidates(index, points, k=16):
    """Per point: the triangles of its k nearest samples, exact kernel on those (no
    completeness check: fast but may miss the nearest triangle)."""
    _, idx = index.tree.query(points, k=k)
    sq = np.full(len(points), np.inf)
    closest_on_candidates(points, index.sample_face[idx], index.corners, sq,
                          np.full(len(points), -1, dtype=np.int64), np.zeros((len(points), 3)))
    return np.sqrt(sq)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--scan_points', type=int, default=100000)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--trimesh_points', type=int, default=5000)
    args = parser.parse_args(argv)
    scan, pred, faces, pred_lmk = make_case(args.scan_points)
    print('scan %d vertices (cropped, mm); prediction %d vertices, %d faces; load average %s'
          % (len(scan.vertices), len(pred), len(faces),
             ' '.join('%.1f' % x for x in os.getloadavg())))
    scan_to_mesh(Scan(scan.vertices[:500], scan.landmarks), pred, faces, pred_lmk)  # compile

    # --- one distance evaluation at the landmark pose, the mesh moved into the scan frame ---
    transform = procrustes(scan.landmarks, pred_lmk)
    moved = transform[0] * pred @ transform[1].T + transform[2]
    points = scan.vertices
    cell = face_sphere(scan.landmarks)[1] * CELL_PER_RADIUS

    def ours():
        return ScanDistance(points, SurfaceIndex(moved, faces), cell).distances()[0]

    wall, cpu, exact = timed(ours, args.repeats)
    print('\none distance evaluation, %d points (median of %d):' % (len(points), args.repeats))
    print('  %-44s %7.3f s wall %7.3f s CPU  (exact)' % ('cells + cKDTree ball query + numba', wall,
                                                         cpu))
    wall, cpu, approx = timed(lambda: per_point_candidates(SurfaceIndex(moved, faces), points),
                              args.repeats)
    print('  %-44s %7.3f s wall %7.3f s CPU  max error %.4f mm'
          % ('per-point 16 nearest samples + numba', wall, cpu, np.max(np.abs(approx - exact))))
    from scipy.spatial import cKDTree
    wall, cpu, vert = timed(lambda: cKDTree(moved).query(points)[0], args.repeats)
    print('  %-44s %7.3f s wall %7.3f s CPU  max error %.4f mm (not the protocol)'
          % ('nearest vertex only (cKDTree)', wall, cpu, np.max(np.abs(vert - exact))))
    try:
        import rtree  # noqa: F401  (trimesh's proximity query needs it)
        import trimesh
        subset = points[:args.trimesh_points]
        mesh = trimesh.Trimesh(moved, faces, process=False)
        wall, cpu, out = timed(lambda: trimesh.proximity.closest_point(mesh, subset)[1], 1)
        factor = len(points) / float(len(subset))
        print('  %-44s %7.3f s wall %7.3f s CPU  max error %.4f mm (%d points, scaled)'
              % ('trimesh.proximity.closest_point (rtree)', wall * factor, cpu * factor,
                 np.max(np.abs(out - exact[:len(subset)])), len(subset)))
    except ImportError:
        print('  trimesh.proximity.closest_point: skipped (needs trimesh and rtree)')

    # --- the whole per-image evaluation ---
    def one_image():
        return scan_to_mesh(scan, pred, faces, pred_lmk)

    wall, cpu, (distances, fitted) = timed(one_image, args.repeats)
    init = landmark_alignment(scan.landmarks, pred_lmk)
    query = ScanDistance(scan.vertices, SurfaceIndex(pred, faces), cell)
    _, _, iterations = refine(query, init)
    print('\nper image (Procrustes + refinement + distances, one core, median of %d):'
          % args.repeats)
    print('  %.3f s wall, %.3f s CPU; %d refinement iterations; median %.3f mm, mean %.3f mm; '
          'scale %.2f' % (wall, cpu, iterations, np.median(distances), distances.mean(),
                          fitted[0]))
    print('  goal: <= 1 s per image')


if __name__ == '__main__':
    main()
