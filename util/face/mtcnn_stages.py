"""MTCNN's three stages in numpy around any three networks, as mtcnn 1.0.0's ``detect_faces``
runs them (its defaults), so that the ONNX conversions of its P-Net, R-Net and O-Net find the
same faces without TensorFlow.

The conventions below are mtcnn's own: P-Net's window at cell x spans 2x + 1 to 2x + 12 (its
offsets in units of 11 px); R-Net and O-Net read the box width as x1 - x0 + 1 and keypoints
as x0 - 1 + w u; crops sample the image as tf.image.crop_and_resize does with boxes divided by
the image size; NMS drops a box that any higher-scored box overlaps, even one already dropped.
The pyramid levels are TensorFlow's AREA resizes, reproduced with its float32 cell bounds.

A network is a callable: float32 NHWC batch in [-1, 1] -> its outputs (a list of arrays) in
mtcnn's order: P-Net (box offsets (1, h, w, 4), face probability (1, h, w, 2)), R-Net
((N, 4), (N, 2)), O-Net ((N, 4), keypoints (N, 10) (five x then five y), (N, 2)).
"""
import numpy as np

MIN_FACE = 20  # mtcnn's default min_face_size: the smallest face it finds, in its input
WINDOW = 12  # P-Net's window (px) at each pyramid level
STRIDE = 2  # P-Net's step between windows (px)
SCALE_FACTOR = 0.709  # between pyramid levels
THRESHOLDS = {'pnet': 0.6, 'rnet': 0.7, 'onet': 0.8}  # face probability, kept when above
PATCH = {'rnet': 24, 'onet': 48}  # R-Net's and O-Net's input side
ROW_COLUMNS = 16  # image index, x0, y0, x1, y1, score, five keypoint x, five keypoint y


def normalize(image):
    """(H, W, 3) uint8 -> float32 (x - 127.5) / 128 (exact in float32, as mtcnn's float64)."""
    return (image.astype(np.float32) - np.float32(127.5)) / np.float32(128)


def pyramid_scales(height, width):
    """Scales of P-Net's pyramid levels (k,), largest first; none for a tiny image.

    mtcnn counts the levels from the image's shorter side alone, not from its min_face_size,
    which is why util.face.detect downscales the image instead of raising that."""
    count = int(np.round(-(np.log(min(height, width) / WINDOW) / np.log(SCALE_FACTOR) + 1)))
    return WINDOW / MIN_FACE * SCALE_FACTOR ** np.arange(count)


def area_weights(in_size, out_size):
    """One axis of TensorFlow's area resize -> input indices (out_size, k) int and float32
    weights (out_size, k) (0 past a cell's end).

    Output cell i covers [i s, (i + 1) s) of the input, s = in_size / out_size, with each
    input pixel weighted by the length it covers; the bounds are computed in float32, as
    TensorFlow does (exact bounds, or cv2's INTER_AREA, differ from it by up to 3e-5,
    enough to change a proposal near P-Net's threshold).
    """
    step = np.float32(in_size) / np.float32(out_size)
    start = np.arange(out_size, dtype=np.float32) * step
    end = np.arange(1, out_size + 1, dtype=np.float32) * step
    first = np.floor(start).astype(int)
    span = int((np.ceil(end).astype(int) - first).max())
    index = first[:, None] + np.arange(span)
    pixel = index.astype(np.float32)
    cover = np.minimum(pixel + 1, end[:, None]) - np.maximum(pixel, start[:, None])
    weights = np.where(index < np.ceil(end)[:, None], cover, np.float32(0))
    return np.clip(index, 0, in_size - 1), weights.astype(np.float32)


def pyramid_level(image, scale):
    """(H, W, 3) float32 -> the level at ``scale``: floor(H * scale) x floor(W * scale) (mtcnn's
    float size, truncated by TensorFlow), each pixel the area average it covers, as TensorFlow's
    AREA resize."""
    height, width = np.floor(np.array(image.shape[:2]) * scale).astype(int)
    rows, row_weights = area_weights(image.shape[0], height)
    cols, col_weights = area_weights(image.shape[1], width)
    across = np.einsum('hwkc,wk->hwc', image[:, cols], col_weights)
    level = np.einsum('hkwc,hk->hwc', across[rows], row_weights)
    return level / (np.float32(image.shape[0]) / np.float32(height)
                    * (np.float32(image.shape[1]) / np.float32(width)))


def by_score(rows):
    """(N, C) rows with the score in column 4 -> sorted by score, highest first (mtcnn's order:
    its argsort reversed, which also fixes the order of ties)."""
    return rows[np.argsort(rows[:, 4])[::-1]]


def window_boxes(offsets, probability, scale, threshold):
    """One level's P-Net outputs (1, h, w, 4), (1, h, w, 2) -> (N, 5) x0, y0, x1, y1, score in
    image pixels for the windows whose face probability is above ``threshold``, by score."""
    score = probability[0, :, :, 1]
    ys, xs = np.nonzero(score > threshold)
    reg = offsets[0, ys, xs].astype(np.float64) * (WINDOW - 1)  # (N, 4) px
    cells = np.stack([xs, ys], axis=1) * STRIDE
    rows = np.concatenate([cells + 1 + reg[:, :2], cells + WINDOW + reg[:, 2:],
                           score[ys, xs, None]], axis=1)
    rows = by_score(rows)
    rows[:, :4] /= scale
    return rows


def overlaps(boxes, method):
    """(N, 4) x0, y0, x1, y1 -> (N, N) intersection over union ('union') or over the smaller
    box ('min'); areas without +1, as mtcnn (NaN for two empty boxes)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    low = np.maximum(boxes[None, :, :2], boxes[:, None, :2])
    high = np.minimum(boxes[None, :, 2:], boxes[:, None, 2:])
    inter = np.prod(np.maximum(0, high - low), axis=-1)
    if method == 'union':
        denominator = area[:, None] + area[None, :] - inter
    else:
        denominator = np.minimum(area[:, None], area[None, :])
    with np.errstate(divide='ignore', invalid='ignore'):
        return inter / denominator


def suppress(rows, threshold, method='union', sort=True):
    """(N, C) rows (box in columns 0-3, score in 4) -> the rows no earlier row overlaps by more
    than ``threshold`` (earlier: by score with ``sort``, else as given). As mtcnn, a dropped row
    still drops the later ones it overlaps."""
    if sort:
        rows = by_score(rows)
    beaten = np.triu(overlaps(rows[:, :4], method) > threshold, k=1)
    return rows[~beaten.any(axis=0)]


def square(rows):
    """(N, C) rows -> the same with each box grown to a square about its centre."""
    rows = rows.copy()
    size = rows[:, 2:4] - rows[:, 0:2]
    side = size.max(axis=1, keepdims=True)
    rows[:, 0:2] += 0.5 * size - 0.5 * side
    rows[:, 2:4] = rows[:, 0:2] + side
    return rows


def box_sizes(rows):
    """(N, C) rows -> (N, 2) box width, height, as mtcnn's refinement reads them (+1)."""
    return rows[:, 2:4] - rows[:, 0:2] + 1


def refine(rows, offsets, scores):
    """Apply a network's box offsets (N, 4) and face probabilities (N, 2) to rows (N, C)."""
    rows = rows.copy()
    rows[:, :4] += offsets * np.tile(box_sizes(rows), 2)
    rows[:, 4] = scores[:, 1]
    return rows


def crop_patches(image, boxes, side):
    """(H, W, 3) float32, boxes (N, 4) x0, y0, x1, y1 px -> (N, side, side, 3) float32 patches.

    As tf.image.crop_and_resize(image, boxes / image size): sample k of a patch lies at
    y0 / H * (H - 1) + k * (y1 - y0) / H * (H - 1) / (side - 1) (and so in x), bilinear, and a
    row or column of samples outside the image is 0. In float32, as TensorFlow's kernel.
    """
    size = np.array(image.shape[:2], dtype=np.float32)[::-1]  # W, H
    start = (boxes[:, :2] / size).astype(np.float32)  # (N, 2) x, y in [0, 1]
    end = (boxes[:, 2:] / size).astype(np.float32)
    step = (end - start) * (size - 1) / np.float32(side - 1)
    at = start[:, None] * (size - 1) + np.arange(side, dtype=np.float32)[:, None] * step[:, None]
    low = np.floor(at)
    frac = (at - low)[..., None]  # (N, side, 2, 1)
    inside = (at >= 0) & (at <= size - 1)  # (N, side, 2)
    limit = np.array(image.shape[1::-1]) - 1
    lo = np.clip(low, 0, limit).astype(int)
    hi = np.clip(np.ceil(at), 0, limit).astype(int)
    rows_lo, rows_hi = lo[:, :, None, 1], hi[:, :, None, 1]  # (N, side, 1)
    cols_lo, cols_hi = lo[:, None, :, 0], hi[:, None, :, 0]  # (N, 1, side)
    fx = frac[:, None, :, 0]  # (N, 1, side, 1)
    fy = frac[:, :, None, 1]  # (N, side, 1, 1)
    top = image[rows_lo, cols_lo] + (image[rows_lo, cols_hi] - image[rows_lo, cols_lo]) * fx
    bottom = image[rows_hi, cols_lo] + (image[rows_hi, cols_hi] - image[rows_hi, cols_lo]) * fx
    patches = top + (bottom - top) * fy
    keep = inside[:, :, None, 1] & inside[:, None, :, 0]
    return np.where(keep[..., None], patches, np.float32(0)).astype(np.float32)


def proposals(image, pnet):
    """Normalized image (H, W, 3) float32 -> P-Net's squared proposals (N, 5) x0, y0, x1, y1,
    score: per level the windows above its threshold, NMS 0.5; then NMS 0.7 over all levels."""
    levels = []
    for scale in pyramid_scales(*image.shape[:2]):
        offsets, probability = pnet(pyramid_level(image, scale)[None])
        rows = window_boxes(offsets, probability, scale, THRESHOLDS['pnet'])
        levels.append(suppress(rows, 0.5, sort=False))
    rows = np.concatenate(levels) if levels else np.empty((0, 5))
    return square(suppress(rows, 0.7))


def rnet_stage(image, rows, rnet):
    """P-Net's proposals (N, 5) -> R-Net's squared boxes (M, 5): refined, above its threshold,
    NMS 0.7."""
    offsets, scores = rnet(crop_patches(image, rows[:, :4], PATCH['rnet']))
    rows = refine(rows, offsets, scores)
    return square(suppress(rows[rows[:, 4] > THRESHOLDS['rnet']], 0.7))


def onet_stage(image, rows, onet):
    """R-Net's boxes (N, 5) -> faces (M, 15): box, score, five keypoint x, five keypoint y;
    refined, above O-Net's threshold, NMS 0.7 over the smaller box."""
    offsets, keypoints, scores = onet(crop_patches(image, rows[:, :4], PATCH['onet']))
    sizes = box_sizes(rows)
    points = np.concatenate([sizes[:, 0:1] * keypoints[:, :5] + rows[:, 0:1] - 1,
                             sizes[:, 1:2] * keypoints[:, 5:] + rows[:, 1:2] - 1], axis=1)
    rows = np.concatenate([refine(rows, offsets, scores), points], axis=1)
    return suppress(rows[rows[:, 4] > THRESHOLDS['onet']], 0.7, method='min')


def detect_rows(image, pnet, rnet, onet):
    """(H, W, 3) uint8 RGB -> (N, 16) rows in mtcnn's numpy layout (detect_faces with
    output_type='numpy', box_format='xyxy', fit_to_image=False): image index 0, x0, y0, x1,
    y1, score, then the five keypoints' x and their five y, in this image's pixels."""
    normalized = normalize(image)
    rows = proposals(normalized, pnet)
    for stage, net in ((rnet_stage, rnet), (onet_stage, onet)):
        if not len(rows):
            return np.empty((0, ROW_COLUMNS))
        rows = stage(normalized, rows, net)
    return np.concatenate([np.zeros((len(rows), 1)), rows], axis=1)
