"""Mesh geometry shared by the renderer and the texture projection."""
import numba
import numpy as np


@numba.njit(cache=True)
def _vertex_normals_kernel(v, faces, sums, out):
    """vertex_normals into ``out`` (V,3); ``sums`` (3,V,3) zeros, scratch.

    The floating-point operations of the NumPy formulation, in its order: face normals as
    np.cross computes them, then per corner k a running sum over the faces in order (as
    np.bincount accumulates), the three corner sums added in order k = 0, 1, 2, and the
    length as np.linalg.norm takes it (x*x + y*y, then + z*z) -- so the same bits, without
    the (F,3,3) temporaries.
    """
    for f in range(faces.shape[0]):
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        a0 = v[i1, 0] - v[i0, 0]
        a1 = v[i1, 1] - v[i0, 1]
        a2 = v[i1, 2] - v[i0, 2]
        b0 = v[i2, 0] - v[i0, 0]
        b1 = v[i2, 1] - v[i0, 1]
        b2 = v[i2, 2] - v[i0, 2]
        n0 = a1 * b2 - a2 * b1
        n1 = a2 * b0 - a0 * b2
        n2 = a0 * b1 - a1 * b0
        for k, i in ((0, i0), (1, i1), (2, i2)):
            sums[k, i, 0] += n0
            sums[k, i, 1] += n1
            sums[k, i, 2] += n2
    for i in range(v.shape[0]):
        x = (0.0 + sums[0, i, 0] + sums[1, i, 0]) + sums[2, i, 0]
        y = (0.0 + sums[0, i, 1] + sums[1, i, 1]) + sums[2, i, 1]
        z = (0.0 + sums[0, i, 2] + sums[1, i, 2]) + sums[2, i, 2]
        length = np.sqrt((x * x + y * y) + z * z)
        if not length > 0:
            length = 1.0
        out[i, 0] = x / length
        out[i, 1] = y / length
        out[i, 2] = z / length


def _vertex_normals_numpy(v, faces):
    """The reference formulation (also the path for faces outside [0, V), which raises)."""
    tri = v[faces]                                                   # (F,3,3)
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F,3), |n| = 2 * area
    normals = np.zeros_like(v)
    for k in range(3):  # bincount sums repeated indices like np.add.at, many times faster
        for c in range(3):
            normals[:, c] += np.bincount(faces[:, k], weights=face_n[:, c], minlength=len(v))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(length > 0, length, 1.0)


def vertex_normals(v, faces):
    """(V,3) vertices, (F,3) faces -> (V,3) unit normals.

    Area-weighted: each vertex sums the unnormalised normals cross(v1 - v0, v2 - v0) of its
    faces, then is normalised; with outward winding the normals point out of the surface.
    Vertices in no face (or only degenerate ones) get a zero normal.
    """
    v = np.asarray(v, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if (v.ndim != 2 or v.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3
            or (faces.size and (faces.min() < 0 or faces.max() >= len(v)))):
        return _vertex_normals_numpy(v, faces)
    out = np.empty((len(v), 3))
    _vertex_normals_kernel(np.ascontiguousarray(v), np.ascontiguousarray(faces),
                           np.zeros((3, len(v), 3)), out)
    return out
