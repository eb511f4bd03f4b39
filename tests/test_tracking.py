"""util.face.tracking: which detected face is which track, frame after frame."""
import collections

import numpy as np

from util.face.tracking import FaceTracker, nearest_matches

Face = collections.namedtuple('Face', 'box score keypoints')


def face(x, y, side):
    """A detection of a square face centred at (x, y)."""
    return Face((x - side / 2, y - side / 2, x + side / 2, y + side / 2), 0.99, None)


def test_one_track_starts_on_the_largest_face_and_follows_it_while_it_shrinks():
    tracker = FaceTracker(1)
    small, big = face(50, 50, 40), face(200, 100, 80)
    assert tracker.update([small, big]) == {0: big}
    # it moves right and shrinks below the other face's size: still the same person
    path = [face(200 + 10 * k, 100, 80 - 6 * k) for k in range(1, 8)]
    for moved in path:
        other = face(50, 50, 60)
        assert tracker.update([other, moved]) == {0: moved}


def test_lost_track_detects_again_and_takes_the_largest_face():
    tracker = FaceTracker(1)
    tracker.update([face(100, 100, 50)])
    # a jump farther than the face's own size is not the same face: detected again at once,
    # the largest face of this frame is taken
    far = face(400, 100, 30)
    assert tracker.update([far]) == {0: far}
    # no face at all: lost in this frame; the next frame's largest face is taken
    assert tracker.update([]) == {}
    small, large = face(400, 100, 30), face(10, 300, 60)
    assert tracker.update([small, large]) == {0: large}
    # a follower keeps its face even when a larger one appears
    near = face(14, 300, 58)
    assert tracker.update([face(200, 200, 150), near]) == {0: near}


def test_an_unmatched_track_takes_a_free_face_before_a_new_track_starts():
    tracker = FaceTracker(2)
    assert tracker.update([face(0, 0, 40)]) == {0: face(0, 0, 40)}
    # the only face jumped: it is track 0 again, not a new track 1
    assert tracker.update([face(200, 0, 40)]) == {0: face(200, 0, 40)}
    assert len(tracker.boxes) == 1


def test_several_tracks_are_numbered_left_to_right_and_keep_their_identity():
    tracker = FaceTracker(2)
    left, right, tiny = face(100, 100, 60), face(300, 100, 70), face(200, 300, 20)
    assert tracker.update([right, tiny, left]) == {0: left, 1: right}
    # they cross: each follows its own face, not the order of the list
    for k in range(1, 10):
        a, b = face(100 + 20 * k, 100, 60), face(300 - 20 * k, 110, 70)
        assert tracker.update([b, a, tiny]) == {0: a, 1: b}
    # a track that starts later gets the next number
    late = FaceTracker(3)
    late.update([left])
    assert late.update([face(102, 100, 60), right]) == {0: face(102, 100, 60), 1: right}


def test_nearest_matches_is_greedy_by_distance_with_each_box_used_once():
    previous = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], dtype=float)
    boxes = np.array([[21, 0, 31, 10], [1, 0, 11, 10], [100, 100, 110, 110]], dtype=float)
    assert nearest_matches(previous, boxes) == {0: 1, 1: 0}
    # one box between two tracks goes to the nearer one; the other finds none within its size
    assert nearest_matches(previous, boxes[[0]] - [5, 0, 5, 0]) == {1: 0}
    assert nearest_matches(previous, np.zeros((0, 4))) == {}
