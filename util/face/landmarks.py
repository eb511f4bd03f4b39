"""The 68 facial landmarks of a FLAME mesh from the landmark embeddings (docs/formats.md §8).

A landmark is a barycentric mix of the three vertices of one mesh face. The 51 inner points
(brows, nose, eyes, mouth) are fixed; the 17 jaw-contour points depend on the head's yaw and
come from the dynamic embedding (79 contours, one per degree of yaw in [-39, 39]).
"""
import numpy as np

from smpl_webuser.lbs import rodrigues
from util.face.head_pose import euler_zyx
from util.io.safe_pickle import load_npy_dict, load_pickle

N_STATIC = 51
N_CONTOUR = 17
N_YAW = 79
MAX_YAW = 39


class EmbeddingFormatError(ValueError):
    """A landmark-embedding file lacks a key or has arrays of the wrong shape."""


def _field(data, key, path):
    if not isinstance(data, dict) or key not in data:
        raise EmbeddingFormatError("%s: not a landmark embedding (no '%s')" % (path, key))
    return data[key]


def _checked(array, shape, what, path):
    if array.shape != shape:
        raise EmbeddingFormatError('%s: %s has shape %s, expected %s'
                                   % (path, what, array.shape, shape))
    return array


def load_static_embedding(path):
    """flame_static_embedding.pkl -> face_idx (51,) int64, b_coords (51,3) float64."""
    data = load_pickle(path)
    face_idx = np.asarray(_field(data, 'lmk_face_idx', path)).astype(np.int64).reshape(-1)
    b_coords = np.asarray(_field(data, 'lmk_b_coords', path), dtype=np.float64)
    return (_checked(face_idx, (N_STATIC,), 'lmk_face_idx', path),
            _checked(b_coords, (N_STATIC, 3), 'lmk_b_coords', path))


def load_dynamic_embedding(path):
    """flame_dynamic_embedding.npy -> face_idx (79,17) int64, b_coords (79,17,3) float64."""
    data = load_npy_dict(path)
    try:
        face_idx = np.stack([np.asarray(a).reshape(-1) for a in
                             _field(data, 'lmk_face_idx', path)]).astype(np.int64)
        b_coords = np.stack([np.asarray(a, dtype=np.float64) for a in
                             _field(data, 'lmk_b_coords', path)])
    except ValueError as exc:   # ragged lists
        raise EmbeddingFormatError('%s: contours of unequal length (%s)' % (path, exc)) from exc
    return (_checked(face_idx, (N_YAW, N_CONTOUR), 'lmk_face_idx', path),
            _checked(b_coords, (N_YAW, N_CONTOUR, 3), 'lmk_b_coords', path))


def dynamic_index(yaw_deg):
    """(N,) yaw in degrees -> (N,) int64 contour index: the yaw rounded and clipped to
    [-39, 39]; index = yaw for 0..39, 39 - yaw for negative yaw (40..78)."""
    yaw = np.clip(np.rint(np.asarray(yaw_deg, dtype=np.float64)), -MAX_YAW, MAX_YAW).astype(np.int64)
    return np.where(yaw >= 0, yaw, MAX_YAW - yaw)


def yaw_from_pose(pose):
    """(N,6) RingNet pose or (N,15) full FLAME pose -> (N,) yaw in degrees, the embedding's sign.

    Like the FLAME fitting code this reads the y Euler angle of the head rotation
    R = R_global @ R_neck (the neck is identity in a 6-value pose) and negates it, so a
    positive yaw turns the face toward -x. For a 6-value pose this equals the yaw of
    util.face.head_pose.head_pose_deg (taking out the frontal Rx(180°) negates the y angle).
    """
    pose = np.asarray(pose, dtype=np.float64)
    rot = rodrigues(pose[:, 0:3])
    if pose.shape[1] == 15:
        rot = rot @ rodrigues(pose[:, 3:6])
    return -np.degrees(euler_zyx(rot)[:, 1])


def barycentric_points(vertices, faces, face_idx, b_coords):
    """vertices (N,V,3), faces (F,3), face_idx (N,L) or (L,), b_coords (N,L,3) or (L,3)
    -> (N,L,3) points sum_k b_coords[..., k] * vertices[faces[face_idx, k]]."""
    vertices = np.asarray(vertices, dtype=np.float64)
    n = vertices.shape[0]
    corner_ids = np.asarray(faces, dtype=np.int64)[np.asarray(face_idx, dtype=np.int64)]
    corner_ids = np.broadcast_to(corner_ids, (n,) + corner_ids.shape[-2:])      # (N,L,3)
    corners = vertices[np.arange(n)[:, None, None], corner_ids]                 # (N,L,3,3)
    b_coords = np.broadcast_to(np.asarray(b_coords, dtype=np.float64), corner_ids.shape)
    return np.einsum('nlk,nlkc->nlc', b_coords, corners)


def landmarks_68(vertices, faces, static, dynamic, yaw_deg):
    """vertices (N,V,3), faces (F,3), static (face_idx (51,), b_coords (51,3)), dynamic
    (face_idx (79,17), b_coords (79,17,3)), yaw_deg (N,) -> (N,68,3): the 17 contour points for
    each mesh's yaw, then the 51 static points (iBUG 68 order)."""
    index = dynamic_index(yaw_deg)
    contour = barycentric_points(vertices, faces, dynamic[0][index], dynamic[1][index])
    inner = barycentric_points(vertices, faces, static[0], static[1])
    return np.concatenate([contour, inner], axis=1)
