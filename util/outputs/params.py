"""The parameters, --save_flame_parameters: the original's params/NAME.npy and its JSON sidecar
params/NAME.json (docs/formats.md §5, §12).

The original's params/NAME.npy stays as it is; the JSON carries the same parameters as plain
lists plus what a next tool needs and the .npy lacks: head-pose angles, the face box, the
crop (to map crop pixels back to input pixels) and where the result came from.
"""
import io
import json

import numpy as np

from util.face.frames import crop_box, face_box
from util.face.head_pose import head_pose_deg
from util.outputs.naming import output_path


def crop_record(proc_param, crop_box):
    """proc_param of util.face.preprocess.preprocess_image and the box cropped around -> dict.

    A crop pixel (u, v) shows input pixel ((u + offset_x) / scale, (v + offset_y) / scale),
    the mapping the render camera uses (offset = start_pt - size / 2).
    """
    size = int(proc_param['img_size'])
    offset = np.asarray(proc_param['start_pt'], dtype=np.float64) - size / 2.0
    return {'box': [float(b) for b in crop_box], 'size': size,
            'scale': float(proc_param['scale']), 'offset': offset.tolist(),
            'to_input': 'x_input = (x_crop + offset[0]) / scale; '
                        'y_input = (y_crop + offset[1]) / scale'}


def params_record(params, proc_param, crop_box, box, source, face=None, score=None):
    """params {'cam', 'pose', 'shape', 'expression'} arrays (util.model.theta.split_theta) -> the
    sidecar dict. box / crop_box: (x0, y0, x1, y1) input pixels of the face (or the whole
    image) and of the crop; face: the face's index (None without detection)."""
    yaw, pitch, roll = head_pose_deg(np.asarray(params['pose'])[None, :3])[0]
    record = {key: [float(x) for x in np.asarray(params[key]).reshape(-1)]
              for key in ('cam', 'pose', 'shape', 'expression')}
    # + 0.0 turns -0.0 into 0.0
    record['head_pose_deg'] = {'yaw': float(yaw) + 0.0, 'pitch': float(pitch) + 0.0,
                               'roll': float(roll) + 0.0}
    record['box'] = [float(b) for b in box]
    record['score'] = None if score is None else float(score)
    record['crop'] = crop_record(proc_param, crop_box)
    record['source'] = source
    record['face'] = face
    return record


def json_bytes(record):
    """A record as JSON text, one key per line (floats written exactly; non-ASCII characters, and bytes of file
    names that are not UTF-8, escaped as \\uXXXX so the file is always valid JSON)."""
    lines = ['  %s: %s' % (json.dumps(key), json.dumps(value)) for key, value in record.items()]
    return ('{\n' + ',\n'.join(lines) + '\n}\n').encode('ascii')


def npy_bytes(value):
    """The bytes ``np.save`` writes for ``value`` (a dict is saved as a 0-d object array)."""
    buffer = io.BytesIO()
    np.save(buffer, value)
    return buffer.getvalue()


def params_outputs(frame, pred, params, source=''):
    """{params/NAME.npy, params/NAME.json: bytes} of a frame; params: its theta split
    (util.model.theta), copies."""
    detection = frame.detection
    return {output_path(frame.name, 'params'): npy_bytes(params),
            output_path(frame.name, 'params_json'): json_bytes(params_record(
                params, pred.proc_param, crop_box(frame), face_box(frame), source, frame.face,
                None if detection is None else detection.score))}
