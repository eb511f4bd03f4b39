"""Mesh geometry shared by the renderer and the texture projection."""
import numpy as np


def vertex_normals(v, faces):
    """(V,3) vertices, (F,3) faces -> (V,3) unit normals.

    Area-weighted: each vertex sums the unnormalised normals cross(v1 - v0, v2 - v0) of its
    faces, then is normalised; with outward winding the normals point out of the surface.
    Vertices in no face (or only degenerate ones) get a zero normal.
    """
    v = np.asarray(v, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    tri = v[faces]                                                   # (F,3,3)
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F,3), |n| = 2 * area
    normals = np.zeros_like(v)
    for k in range(3):  # bincount sums repeated indices like np.add.at, many times faster
        for c in range(3):
            normals[:, c] += np.bincount(faces[:, k], weights=face_n[:, c], minlength=len(v))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(length > 0, length, 1.0)
