"""The part of a NoW scan that is evaluated: a sphere around the nose (docs/formats.md §17).

Landmark order (the scan's .pp and a prediction's 7 points alike): 0 and 3 the outer eye
corners, 1 and 2 the inner eye corners, 4 the bottom of the nose, 5 and 6 the mouth corners.
"""
import numpy as np

CENTRE_TOWARD_BRIDGE = 0.3   # from the nose bottom, this fraction of the way to the bridge
RADIUS_FACTOR = 1.4          # times the mean of the eye width and the nose length


def face_sphere(landmarks):
    """landmarks (7,3) -> (centre (3,), radius): the centre lies 30% of the way from the
    nose bottom to the nose bridge (the midpoint of the inner eye corners); the radius is
    1.4 x the mean of the outer-eye-corner distance and the bridge-to-nose-bottom length."""
    lmk = np.asarray(landmarks, dtype=np.float64)
    nose_bottom = lmk[4]
    bridge = 0.5 * (lmk[1] + lmk[2])
    centre = nose_bottom + CENTRE_TOWARD_BRIDGE * (bridge - nose_bottom)
    eye_width = np.linalg.norm(lmk[0] - lmk[3])
    nose_length = np.linalg.norm(bridge - nose_bottom)
    return centre, RADIUS_FACTOR * 0.5 * (eye_width + nose_length)


def crop_scan(vertices, landmarks):
    """vertices (N,3), landmarks (7,3) -> (M,3) the vertices within the face sphere
    (distance <= radius), in their order. Only vertices count: the error is measured from
    every kept scan vertex, so the scan's faces play no part."""
    vertices = np.asarray(vertices, dtype=np.float64)
    centre, radius = face_sphere(landmarks)
    return vertices[np.linalg.norm(vertices - centre, axis=1) <= radius]
