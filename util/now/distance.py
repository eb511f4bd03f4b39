"""Exact unsigned distances from points to the surface of a triangle mesh.

The exact point-triangle distance is a numba kernel; which triangles it is run on comes from
a scipy cKDTree over sample points that cover every triangle (each point of a triangle lies
within ``cover`` of one of its samples). The scan's points are grouped into small cells, and
each cell gets every triangle that can be nearest to any of its points: with d the distance
from the cell's centre to the surface and r the cell's radius, a triangle further than
d + 2r from the centre is further from each point than the nearest one, and every triangle
within d + 2r has a sample within d + 2r + cover, which a ball query finds. So the answer is
exact, whatever the tree returns beyond that (bench/bench_now.py: why not trimesh's query).
"""
import itertools

import numba
import numpy as np
from scipy.spatial import cKDTree

# a triangle whose squared area is below this fraction of |ab|^2 |ac|^2 is handled as edges
DEGENERATE = 1e-20


@numba.njit(cache=True, inline='always')
def _closest_on_segment(px, py, pz, ax, ay, az, bx, by, bz):
    """Closest point of segment ab to p -> (x, y, z, squared distance)."""
    ux, uy, uz = bx - ax, by - ay, bz - az
    length = ux * ux + uy * uy + uz * uz
    t = 0.0
    if length > 0.0:
        t = min(1.0, max(0.0, ((px - ax) * ux + (py - ay) * uy + (pz - az) * uz) / length))
    qx, qy, qz = ax + t * ux, ay + t * uy, az + t * uz
    return qx, qy, qz, (px - qx) ** 2 + (py - qy) ** 2 + (pz - qz) ** 2


@numba.njit(cache=True)
def _closest_on_edges(px, py, pz, ax, ay, az, bx, by, bz, cx, cy, cz):
    """Nearest point to p on the three edges of abc (for degenerate triangles)."""
    x0, y0, z0, d0 = _closest_on_segment(px, py, pz, ax, ay, az, bx, by, bz)
    x1, y1, z1, d1 = _closest_on_segment(px, py, pz, bx, by, bz, cx, cy, cz)
    x2, y2, z2, d2 = _closest_on_segment(px, py, pz, cx, cy, cz, ax, ay, az)
    if d1 < d0 and d1 <= d2:
        return x1, y1, z1
    if d2 < d0:
        return x2, y2, z2
    return x0, y0, z0


@numba.njit(cache=True, inline='always')
def _closest_on_triangle(px, py, pz, ax, ay, az, bx, by, bz, cx, cy, cz):
    """Closest point of triangle abc to p, by the Voronoi region of p (vertex, edge or face)
    -> (x, y, z) of that point. Degenerate triangles fall through to an edge or a vertex."""
    abx, aby, abz = bx - ax, by - ay, bz - az
    acx, acy, acz = cx - ax, cy - ay, cz - az
    nx, ny, nz = aby * acz - abz * acy, abz * acx - abx * acz, abx * acy - aby * acx
    if nx * nx + ny * ny + nz * nz <= DEGENERATE * ((abx * abx + aby * aby + abz * abz)
                                                  * (acx * acx + acy * acy + acz * acz)):
        # no area (equal or collinear corners): the region tests below would divide by
        # zero; the triangle is its edges
        return _closest_on_edges(px, py, pz, ax, ay, az, bx, by, bz, cx, cy, cz)
    apx, apy, apz = px - ax, py - ay, pz - az
    d1 = abx * apx + aby * apy + abz * apz
    d2 = acx * apx + acy * apy + acz * apz
    if d1 <= 0.0 and d2 <= 0.0:
        return ax, ay, az
    bpx, bpy, bpz = px - bx, py - by, pz - bz
    d3 = abx * bpx + aby * bpy + abz * bpz
    d4 = acx * bpx + acy * bpy + acz * bpz
    if d3 >= 0.0 and d4 <= d3:
        return bx, by, bz
    vc = d1 * d4 - d3 * d2
    if vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:
        t = d1 / (d1 - d3)
        return ax + t * abx, ay + t * aby, az + t * abz
    cpx, cpy, cpz = px - cx, py - cy, pz - cz
    d5 = abx * cpx + aby * cpy + abz * cpz
    d6 = acx * cpx + acy * cpy + acz * cpz
    if d6 >= 0.0 and d5 <= d6:
        return cx, cy, cz
    vb = d5 * d2 - d1 * d6
    if vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:
        t = d2 / (d2 - d6)
        return ax + t * acx, ay + t * acy, az + t * acz
    va = d3 * d6 - d5 * d4
    if va <= 0.0 and (d4 - d3) >= 0.0 and (d5 - d6) >= 0.0:
        t = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        return bx + t * (cx - bx), by + t * (cy - by), bz + t * (cz - bz)
    denom = va + vb + vc
    v = vb / denom
    w = vc / denom
    return ax + v * abx + w * acx, ay + v * aby + w * acy, az + v * abz + w * acz


@numba.njit(cache=True)
def closest_on_candidates(points, candidates, corners, best_sq, best_face, best_point):
    """points (N,3); candidates (N,K) triangle ids (-1: none); corners (F,3,3) -> in place,
    for each point, the nearest of its candidates: squared distance best_sq (N,) (lowered
    only), best_face (N,) and best_point (N,3)."""
    for i in range(points.shape[0]):
        px, py, pz = points[i, 0], points[i, 1], points[i, 2]
        for j in range(candidates.shape[1]):
            f = candidates[i, j]
            if f < 0:
                continue
            qx, qy, qz = _closest_on_triangle(
                px, py, pz, corners[f, 0, 0], corners[f, 0, 1], corners[f, 0, 2],
                corners[f, 1, 0], corners[f, 1, 1], corners[f, 1, 2],
                corners[f, 2, 0], corners[f, 2, 1], corners[f, 2, 2])
            d = (px - qx) ** 2 + (py - qy) ** 2 + (pz - qz) ** 2
            if d < best_sq[i]:
                best_sq[i] = d
                best_face[i] = f
                best_point[i, 0] = qx
                best_point[i, 1] = qy
                best_point[i, 2] = qz


@numba.njit(cache=True)
def _filter_rows(centers, ptr, faces, corners, limit, mark, counts, out):
    """centers (M,3); row i's candidate triangles faces[ptr[i]:ptr[i+1]] (repeats allowed);
    limit (M,); mark (F,) scratch filled with -1 -> in place: counts (M,) and out (M,W) the
    distinct candidates of each row within ``limit`` of its centre."""
    for i in range(centers.shape[0]):
        px, py, pz = centers[i, 0], centers[i, 1], centers[i, 2]
        lim = limit[i] * limit[i]
        n = 0
        for j in range(ptr[i], ptr[i + 1]):
            f = faces[j]
            if mark[f] == i:
                continue
            mark[f] = i
            qx, qy, qz = _closest_on_triangle(
                px, py, pz, corners[f, 0, 0], corners[f, 0, 1], corners[f, 0, 2],
                corners[f, 1, 0], corners[f, 1, 1], corners[f, 1, 2],
                corners[f, 2, 0], corners[f, 2, 1], corners[f, 2, 2])
            if (px - qx) ** 2 + (py - qy) ** 2 + (pz - qz) ** 2 <= lim:
                out[i, n] = f
                n += 1
        counts[i] = n


@numba.njit(cache=True)
def _closest_in_cells(points, cell_of, sets, counts, corners, best_sq, best_face, best_point):
    """points (N,3), cell_of (N,) their cell, the cells' candidate triangles sets (M,W) (the
    first counts (M,) of each row) -> in place: squared distance, triangle, closest point."""
    for i in range(points.shape[0]):
        px, py, pz = points[i, 0], points[i, 1], points[i, 2]
        c = cell_of[i]
        best = np.inf
        for j in range(counts[c]):
            f = sets[c, j]
            qx, qy, qz = _closest_on_triangle(
                px, py, pz, corners[f, 0, 0], corners[f, 0, 1], corners[f, 0, 2],
                corners[f, 1, 0], corners[f, 1, 1], corners[f, 1, 2],
                corners[f, 2, 0], corners[f, 2, 1], corners[f, 2, 2])
            d = (px - qx) ** 2 + (py - qy) ** 2 + (pz - qz) ** 2
            if d < best:
                best = d
                best_face[i] = f
                best_point[i, 0] = qx
                best_point[i, 1] = qy
                best_point[i, 2] = qz
        best_sq[i] = best


def cover_samples(corners, spacing):
    """corners (F,3,3), spacing > 0 -> samples (S,3), sample_face (S,) int64, cover float.

    Triangle f is cut into n_f^2 similar sub-triangles (n_f = ceil(R_f / spacing), R_f the
    largest distance from its centroid to a corner); the samples are their centroids. Every
    point of the triangle lies within cover = max_f R_f / n_f <= spacing of one of them.
    """
    centroid = corners.mean(axis=1)
    radius = np.linalg.norm(corners - centroid[:, None], axis=2).max(axis=1)       # (F,)
    n = np.maximum(1, np.ceil(radius / spacing)).astype(np.int64)
    samples, faces = [centroid[n == 1]], [np.flatnonzero(n == 1)]
    for m in np.unique(n[n > 1]):
        ids = np.flatnonzero(n == m)
        i, j = np.meshgrid(np.arange(m), np.arange(m), indexing='ij')
        up, down = i + j <= m - 1, i + j <= m - 2
        # weights of b and c at the sub-triangle centroids ("up" and "down" sub-triangles)
        wb = np.concatenate([i[up] + 1.0 / 3, i[down] + 2.0 / 3]) / m
        wc = np.concatenate([j[up] + 1.0 / 3, j[down] + 2.0 / 3]) / m
        a, b, c = corners[ids, 0], corners[ids, 1], corners[ids, 2]                # (T,3)
        pts = (a[:, None] + wb[None, :, None] * (b - a)[:, None]
               + wc[None, :, None] * (c - a)[:, None])                            # (T,m*m,3)
        samples.append(pts.reshape(-1, 3))
        faces.append(np.repeat(ids, len(wb)))
    cover = float(np.max(radius / n))
    return np.concatenate(samples), np.concatenate(faces).astype(np.int64), cover


class SurfaceIndex:
    """One triangle mesh, vertices (V,3) and faces (F,3), indexed for nearest-surface queries:
    a cKDTree over cover_samples (``spacing``: by default the median triangle radius, so
    most triangles get one sample)."""

    def __init__(self, vertices, faces, spacing=None):
        vertices = np.asarray(vertices, dtype=np.float64)
        faces = np.asarray(faces, dtype=np.int64)
        if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
            raise ValueError('a surface needs (F, 3) faces, F > 0; got %s' % (faces.shape,))
        self.corners = np.ascontiguousarray(vertices[faces])                       # (F,3,3)
        if spacing is None:
            centroid = self.corners.mean(axis=1)
            spacing = float(np.median(np.linalg.norm(self.corners - centroid[:, None],
                                                     axis=2).max(axis=1)))
        samples, self.sample_face, self.cover = cover_samples(self.corners, spacing or 1.0)
        self.tree = cKDTree(samples)

    def triangles_near(self, centers, slack):
        """centers (M,3), slack (M,) >= 0 -> (sets (M,W) int64 padded with -1, counts (M,)):
        for centre i every triangle within d_i + slack_i of it, d_i its distance to the
        surface. Complete: such a triangle has a sample within d_i + slack_i + cover, and the
        ball query returns every sample that close (d_i is bounded by the nearest of the
        triangles of the 4 nearest samples)."""
        m = len(centers)
        k = min(4, len(self.sample_face))
        _, idx = self.tree.query(centers, k=k)
        sq = np.full(m, np.inf)
        closest_on_candidates(centers, self.sample_face[idx.reshape(m, k)], self.corners, sq,
                              np.full(m, -1, dtype=np.int64), np.zeros((m, 3)))
        limit = np.sqrt(sq) + slack
        near = self.tree.query_ball_point(centers, limit + self.cover)
        lengths = np.fromiter(map(len, near), dtype=np.int64, count=m)
        ptr = np.concatenate([[0], np.cumsum(lengths)])
        faces = self.sample_face[np.fromiter(itertools.chain.from_iterable(near),
                                             dtype=np.int64, count=int(ptr[-1]))]
        counts = np.zeros(m, dtype=np.int64)
        out = np.full((m, int(lengths.max()) if m else 0), -1, dtype=np.int64)
        _filter_rows(centers, ptr, faces, self.corners, limit,
                     np.full(len(self.corners), -1, dtype=np.int64), counts, out)
        return out[:, :int(counts.max()) if m else 0], counts


def _cells(points, size):
    """points (N,3), cell edge ``size`` -> order (N,) points sorted by cell, cell_of (N,) the
    cell of each sorted point, centers (M,3) mean of each cell's points, radius (M,) largest
    distance from a centre to its points."""
    keys = np.floor(points / size).astype(np.int64)
    keys -= keys.min(axis=0)
    span = keys.max(axis=0) + 1
    flat = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]
    order = np.argsort(flat, kind='stable')
    _, cell_of, counts = np.unique(flat[order], return_inverse=True, return_counts=True)
    sorted_points = points[order]
    centers = np.zeros((len(counts), 3))
    np.add.at(centers, cell_of, sorted_points)
    centers /= counts[:, None]
    radius = np.zeros(len(counts))
    np.maximum.at(radius, cell_of, np.linalg.norm(sorted_points - centers[cell_of], axis=1))
    return order, cell_of, centers, radius


class ScanDistance:
    """Distances from a fixed point set (a scan's vertices, (N,3)) to a mesh that moves by a
    similarity, x = s R v + t, without rebuilding anything per pose.

    The points are grouped into cells of edge ``cell_size`` (scan units); each cell keeps the
    triangles that can be nearest to any of its points, found with ``margin`` to spare in the
    mesh's frame. A cell's set stays complete while its centre's motion plus its radius (in
    the mesh's frame) stays within the margin plus its radius at the time it was found
    (triangle distance is 1-Lipschitz); only cells that moved further ask the tree again.
    """

    def __init__(self, points, index, cell_size, margin=None):
        self.points = np.asarray(points, dtype=np.float64)
        self.index = index
        order, self.cell_of, self.centers, self.radius = _cells(self.points, cell_size)
        self.order = order
        self.sorted_points = np.ascontiguousarray(self.points[order])
        self.margin = cell_size if margin is None else margin
        m = len(self.centers)
        self.built_at = np.full((m, 3), np.nan)        # cell centres (mesh frame) when found
        self.budget = np.full(m, -1.0)                 # margin + radius there
        self.sets = np.full((m, 0), -1, dtype=np.int64)
        self.counts = np.zeros(m, dtype=np.int64)

    def _refresh(self, centers, radius, margin):
        """Find again the triangle sets of cells that moved too far (see class doc)."""
        moved = np.linalg.norm(centers - self.built_at, axis=1)
        stale = np.flatnonzero(~(moved + radius <= self.budget))   # NaN: never built
        if not len(stale):
            return
        sets, counts = self.index.triangles_near(centers[stale], 2.0 * (radius[stale] + margin))
        if sets.shape[1] > self.sets.shape[1]:
            self.sets = np.pad(self.sets, ((0, 0), (0, sets.shape[1] - self.sets.shape[1])),
                               constant_values=-1)
        self.sets[stale, :sets.shape[1]] = sets
        self.counts[stale] = counts
        self.built_at[stale] = centers[stale]
        self.budget[stale] = radius[stale] + margin

    def distances(self, scale=1.0, rotation=None, translation=None):
        """The mesh at x = scale * rotation @ v + translation -> (dist (N,), face (N,) int64,
        closest (N,3)) for the points in their original order; distances and closest points
        in the points' units and frame."""
        rotation = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
        translation = np.zeros(3) if translation is None else np.asarray(translation, float)
        def to_mesh(x):  # points into the mesh's frame: v = R^T (x - t) / s
            return ((x - translation) @ rotation) / scale

        local = np.ascontiguousarray(to_mesh(self.sorted_points))
        self._refresh(to_mesh(self.centers), self.radius / scale, self.margin / scale)
        n = len(local)
        sq = np.empty(n)
        face = np.empty(n, dtype=np.int64)
        closest = np.empty((n, 3))
        _closest_in_cells(local, self.cell_of, self.sets, self.counts, self.index.corners,
                          sq, face, closest)
        out_d, out_f, out_c = np.empty(n), np.empty(n, dtype=np.int64), np.empty((n, 3))
        out_d[self.order] = np.sqrt(sq) * scale
        out_f[self.order] = face
        out_c[self.order] = scale * closest @ rotation.T + translation
        return out_d, out_f, out_c
