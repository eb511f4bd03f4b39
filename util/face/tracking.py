"""Follow faces through a video: which detected face in this frame is which track.

Faces are detected in every frame (so each frame is cropped exactly as a photo of it would
be); tracking only decides the identity of each detection. A track takes the detection
nearest to its box in the previous frame, if that one moved less than the box's own size;
otherwise it takes the largest face left over (detect again), or is lost in this frame if
none is. Tracks start in the first frame with faces, the largest ones, numbered left to right
as in a photo.
"""
import numpy as np


def box_centers(boxes):
    """boxes (N,4) x0, y0, x1, y1 -> centres (N,2)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (boxes[:, :2] + boxes[:, 2:]) / 2.0


def box_sides(boxes):
    """boxes (N,4) -> (N,) the longer side of each."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def box_areas(boxes):
    """boxes (N,4) -> (N,) their areas."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def nearest_matches(previous, boxes):
    """previous (P,4) boxes of the tracks in the last frame, boxes (N,4) detected now ->
    {track row: box row}, greedily by centre distance, each box used once, and only pairs
    closer than the previous box's side (a face does not jump its own size in one frame)."""
    if len(previous) == 0 or len(boxes) == 0:
        return {}
    distance = np.linalg.norm(box_centers(previous)[:, None] - box_centers(boxes)[None], axis=2)
    gate = box_sides(previous)
    matches, used = {}, set()
    for flat in np.argsort(distance, axis=None, kind='stable'):
        p, b = (int(i) for i in np.unravel_index(flat, distance.shape))
        if p not in matches and b not in used and distance[p, b] < gate[p]:
            matches[p] = b
            used.add(b)
    return matches


class FaceTracker:
    """Identity of the faces of one clip over time (per clip: no state is shared).

    ``update(faces)`` takes a frame's detections (util.face.detect.Face, any order) and returns
    {track index: Face} for the tracks found in that frame. At most ``n_tracks`` tracks exist.
    """

    def __init__(self, n_tracks=1):
        self.n_tracks = max(1, int(n_tracks))
        self.boxes = []  # per track: its box in the previous frame, None while lost

    def update(self, faces):
        faces = list(faces)
        found = {}
        following = [k for k, box in enumerate(self.boxes) if box is not None]
        matches = nearest_matches([self.boxes[k] for k in following],
                                  [face.box for face in faces])
        for row, b in matches.items():
            found[following[row]] = faces[b]
        taken = set(matches.values())
        # largest free faces first (by area, as util.face.detect.select_faces), for the tracks
        # not found yet (lost before, or now: detect again at once; in track order), then
        # for new tracks
        free = sorted((b for b in range(len(faces)) if b not in taken),
                      key=lambda b: -box_areas([faces[b].box])[0])
        lost = [k for k in range(len(self.boxes)) if k not in found]
        for k, b in zip(lost, free):
            found[k] = faces[b]
        free = free[len(lost):][:self.n_tracks - len(self.boxes)]
        # new tracks numbered left to right, as the faces of a photo
        for b in sorted(free, key=lambda b: box_centers([faces[b].box])[0, 0]):
            found[len(self.boxes)] = faces[b]
            self.boxes.append(None)
        self.boxes = [tuple(found[k].box) if k in found else None
                      for k in range(len(self.boxes))]
        return found
