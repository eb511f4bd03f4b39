"""A video track's parameters (docs/formats.md §14): params/NAME.npz, one row per kept frame
(NaN where the face was not found), streamed from rows kept on disk so memory stays flat, and
its JSON twin params/NAME.json (--save_flame_parameters), streamed too."""
import json

import numpy as np

from util.face.frames import Prediction, face_box
from util.face.head_pose import head_pose_deg
from util.io.columns import RowFile
from util.outputs.context import camera
from util.outputs.landmarks import landmark_points

PARAMS = ('cam', 'pose', 'shape', 'expression')
JSON_CHUNK = 1024  # rows formatted at a time: the JSON is streamed, never built whole


class TrackColumns:
    """One track's rows on disk (util.io.columns.RowFile): ``found`` (bool) and one file per
    key of its first row, every row of the clip present (NaN where the face was not found).

    new_file: () -> a fresh staged path; first_row: {key: array}; rows_before: rows of the
    clip before the track started (written as not found).
    """

    def __init__(self, new_file, first_row, rows_before):
        self.found = RowFile(new_file('.raw'), (), bool)
        self.found.fill(rows_before, False)
        self.columns = {}
        for key, value in first_row.items():
            value = np.asarray(value)
            column = RowFile(new_file('.raw'), value.shape,
                             value.dtype if value.dtype.kind == 'f' else np.float64)
            column.fill(rows_before, np.nan)
            self.columns[key] = column

    def append(self, row):
        """The next frame's row: {key: array}, or None where the face was not found."""
        self.found.append(row is not None)
        for key, column in self.columns.items():
            if row is None:
                column.fill(1, np.nan)
            else:
                column.append(row[key])


def _json_values(column, found=None):
    """JSON text of each row of (T, ...) ``column`` (null where ``found`` is False)."""
    for start in range(0, len(column), JSON_CHUNK):
        rows = np.asarray(column[start:start + JSON_CHUNK])
        ok = None if found is None else np.asarray(found[start:start + JSON_CHUNK])
        for k, value in enumerate(rows.tolist()):
            yield 'null' if ok is not None and not ok[k] else json.dumps(value)


def _head_pose_rows(pose):
    """(T,6) pose, read in chunks -> (T,3) yaw, pitch, roll in degrees, chunk by chunk."""
    for start in range(0, len(pose), JSON_CHUNK):
        chunk = np.nan_to_num(np.asarray(pose[start:start + JSON_CHUNK], dtype=np.float64))
        yield from (head_pose_deg(chunk[:, :3]) + 0.0)  # + 0.0: no -0.0


def write_track_json(path, arrays, meta):
    """Write a track's JSON twin to ``path`` as a stream: ``meta`` (source, fps, size,
    smoothing), then each array of ``arrays`` (frame, time_s, found, the parameters, ...) as
    a list over frames (a row is null where the face was not found), then head_pose_deg
    (rows of yaw, pitch, roll, docs/formats.md §12). One key per line."""
    found = arrays['found']
    with open(path, 'w', encoding='ascii') as fh:
        fh.write('{\n' + ''.join('  %s: %s,\n' % (json.dumps(k), json.dumps(v))
                                 for k, v in meta.items()))
        columns = [(key, value, None if key in ('frame', 'time_s', 'found') else found)
                   for key, value in arrays.items() if key != 'fps']
        columns.append(('head_pose_deg', np.array(list(_head_pose_rows(arrays['pose'])))
                        if len(found) else np.zeros((0, 3)), found))
        for n, (key, column, mask) in enumerate(columns):
            fh.write('  %s: [' % json.dumps(key))
            for k, text in enumerate(_json_values(column, mask)):
                fh.write((', ' if k else '') + text)
            fh.write(']%s\n' % (',' if n < len(columns) - 1 else ''))
        fh.write('}\n')


def smoothed_prediction(arrays, row, image, img_size):
    """Row ``row`` of a (smoothed) track -> the Prediction it stands for (theta from its
    parameters, the crop from its crop_* columns; vertices None, for the caller to fill), or
    None where the face was not found."""
    if not arrays['found'][row]:
        return None
    theta = np.concatenate([np.asarray(arrays[k][row], dtype=np.float32) for k in PARAMS])
    proc_param = {'scale': float(arrays['crop_scale'][row]), 'img_size': img_size,
                  'start_pt': np.asarray(arrays['crop_offset'][row]) + img_size / 2.0}
    return Prediction(image, proc_param, None, theta)


def track_row(frame, pred, context):
    """A video frame's row of its track: {'cam', 'pose', 'shape', 'expression' (float32),
    'box' (4,) face box (the whole frame without detection), with --save_landmarks
    'landmarks_2d' (68,2) and 'landmarks_3d' (68,3), and the crop: 'crop_scale' and
    'crop_offset' (2,)}."""
    row = {key: value.copy() for key, value in context.layout.split(pred.theta).items()}
    row['box'] = np.asarray(face_box(frame), dtype=np.float64)
    if 'landmarks_3d' in context.kinds:
        row['landmarks_2d'], row['landmarks_3d'] = landmark_points(
            pred, camera(pred, context), context)
    row['crop_scale'] = pred.proc_param['scale']
    row['crop_offset'] = (np.asarray(pred.proc_param['start_pt'], dtype=np.float64)
                          - context.img_size / 2.0)
    return row
