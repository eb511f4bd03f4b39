"""Frame a detected face the way RingNet's training images are framed (pure numpy).

Why: the RingNet paper asks for "a loose crop" of the face, and the original's sample inputs
are CelebA "aligned & cropped" images, 178 wide x 218 high, in which every face was moved by a
similarity transform so that its eyes, nose and mouth corners sit near fixed mean positions
(CELEBA_POINTS). The network was trained on that framing, so a face found in an arbitrary
photo is given the box that the whole CelebA image would cover around it: fit the similarity
that carries CelebA's mean landmarks onto the five detected keypoints, and map the 178 x 218
image frame through it.

The box is kept axis-aligned (the fitted rotation only moves its centre; the face is not
derotated), so the existing crop applies unchanged: ``util.face.preprocess.preprocess_image(img,
img_size=224, box=celeba_box(keypoints))`` scales the box's longer side (its height, 218 units)
to 224 px and centres the 224 x 224 window on the box centre, exactly as the original's
scale-and-crop does for the whole image, and the camera formula that undoes it still holds.

Points are (x, y) in pixels; N points are an (N, 2) array.
"""
import numpy as np

CELEBA_SIZE = (178, 218)  # (width, height) of a CelebA aligned & cropped image

# CelebA's published mean landmark positions in the 178 x 218 aligned images: left eye, right
# eye, nose, left mouth corner, right mouth corner ("left" = image-left, the smaller x).
CELEBA_POINTS = np.array([[69.0, 111.0], [108.0, 111.0], [88.0, 136.0],
                          [72.0, 152.0], [105.0, 152.0]])


def similarity_fit(src, dst):
    """Least-squares 2-D similarity dst ~= scale * R(angle) @ src + t.

    src, dst (N, 2), N >= 2 -> (scale float, angle float radians, t (2,)).
    Closed form (Umeyama without reflection) in complex numbers: with z, w the centred points as
    x + iy, the best a = scale * exp(i angle) is sum(conj(z) w) / sum(|z|^2), and t maps the src
    centroid onto the dst centroid.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError('expected two (N, 2) point sets with N >= 2, got %s and %s'
                         % (src.shape, dst.shape))
    z = src[:, 0] + 1j * src[:, 1]
    w = dst[:, 0] + 1j * dst[:, 1]
    z_mean, w_mean = z.mean(), w.mean()
    zc, wc = z - z_mean, w - w_mean
    spread = np.sum(np.abs(zc) ** 2)
    if not spread > 0:
        raise ValueError('the source points all coincide; no similarity is defined')
    a = np.sum(np.conj(zc) * wc) / spread
    t = w_mean - a * z_mean
    return float(np.abs(a)), float(np.angle(a)), np.array([t.real, t.imag])


def apply_similarity(points, scale, angle, t):
    """(N, 2) points -> (N, 2) scale * R(angle) @ p + t."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return scale * np.asarray(points, dtype=np.float64) @ rot.T + np.asarray(t, dtype=np.float64)


def celeba_box(keypoints):
    """Five keypoints (5, 2) in CELEBA_POINTS order, in image pixels -> box (4,) float64 (x0, y0,
    x1, y1): where the whole CelebA 178 x 218 image would lie around this face.

    The scale s of the fitted similarity (rotation-invariant) sizes the box, 178 s x 218 s; its
    centre is where the CelebA image centre (89, 109) lands under the full fitted similarity.
    celeba_box(CELEBA_POINTS) is (0, 0, 178, 218).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape != CELEBA_POINTS.shape or not np.isfinite(keypoints).all():
        raise ValueError('expected five finite (x, y) keypoints, got %s' % (keypoints.shape,))
    scale, angle, t = similarity_fit(CELEBA_POINTS, keypoints)
    half = 0.5 * np.array(CELEBA_SIZE, dtype=np.float64)  # (89, 109), also the image centre
    centre = apply_similarity(half[None], scale, angle, t)[0]
    return np.concatenate([centre - scale * half, centre + scale * half])


def box_overlap(a, b):
    """Intersection over union of two boxes (x0, y0, x1, y1); 0 when they do not meet."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def face_in_box(faces, box):
    """[util.face.detect.Face] -> the one that matches a given face box (x0, y0, x1, y1) best:
    its box centre inside ``box``, the largest overlap; None when no face's centre is in it."""
    inside = [f for f in faces
              if box[0] <= (f.box[0] + f.box[2]) / 2.0 <= box[2]
              and box[1] <= (f.box[1] + f.box[3]) / 2.0 <= box[3]]
    return max(inside, key=lambda f: box_overlap(f.box, box)) if inside else None


# A face box without keypoints is framed as a square BOX_MARGIN times its mean side around
# its centre: about the loose crop a CelebA framing gives a detected face's box (and the
# factor other NoW pipelines use for these boxes).
BOX_MARGIN = 1.6


def box_framing(box, margin=BOX_MARGIN):
    """A face box (x0, y0, x1, y1) -> the square crop box (4,) float64 around its centre,
    ``margin`` x the mean of its width and height on a side."""
    x0, y0, x1, y1 = (float(v) for v in box)
    half = 0.25 * margin * ((x1 - x0) + (y1 - y0))
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    return np.array([cx - half, cy - half, cx + half, cy + half])
