"""Frames -> RingNet prediction -> every output of the original demo.

The backend (the network) is handed in and the FLAME files are loaded once per ``Pipeline``;
frames then stream through. Each frame's outputs are all computed in memory first, then
written to temporary files that are renamed into place only once every one of them is
written: a failing frame leaves none of its outputs (and no partial file) behind, and never
stops the rest of the batch.
"""
import collections
import concurrent.futures
import io
import os
import sys

import numpy as np

from smpl_webuser.serialization import load_model
from util.camera import render_camera
from util.io.atomic import Staging, recover_staging
from util.io.image_io import encode_image
from util.io.mesh_io import ObjTopology, load_mesh, mtl_name, mtl_text
from util.pipeline.outputs import output_path, requested_kinds
from util.preprocess import preprocess_image
from util.project_on_mesh import compute_texture_map
from util.renderer import MAX_PANEL_SIDE, fit_to_side, four_panel
from util.texture_data import load_texture_data
from util.theta import split_theta
from util.using_flame_parameters import neutral_vertices

Prediction = collections.namedtuple('Prediction', 'image proc_param vertices theta')
Prediction.__doc__ = """image (H,W,3) uint8 RGB; proc_param of util.preprocess.preprocess_image;
vertices (V,3) float32; theta (T,) float32."""

RunResult = collections.namedtuple('RunResult', 'done failed interrupted')
RunResult.__doc__ = """done / failed: frames whose outputs were all written / that failed
(reported); interrupted: the run stopped early on KeyboardInterrupt (SIGINT, or SIGTERM turned
into one by the command line), after finishing the frame being written."""


def npy_bytes(value):
    """The bytes ``np.save`` writes for ``value`` (a dict is saved as a 0-d object array)."""
    buffer = io.BytesIO()
    np.save(buffer, value)
    return buffer.getvalue()


def check_backend(config, backend, load_path):
    """Raise ValueError (naming ``load_path``) unless the backend fits the theta layout and
    ``--img_size`` of ``config``."""
    n_theta = 3 + config.pose_params + config.shape_params + config.expression_params
    if n_theta != backend.n_theta:
        raise ValueError('%s: the network predicts %d parameters, but 3 + --pose_params + '
                         '--shape_params + --expression_params = %d'
                         % (load_path, backend.n_theta, n_theta))
    if backend.image_size not in (None, config.img_size):
        raise ValueError('%s: the network takes %dx%d images, but --img_size is %d'
                         % (load_path, backend.image_size, backend.image_size, config.img_size))


class Pipeline:
    """RingNet on a stream of frames.

    config: the flags (config.py); files: {'load_path', 'flame_model_path',
    'flame_texture_data_path'} (util.pipeline.model_files.resolve_model_files); backend: the
    network (util.pipeline.backends), already loaded.
    """

    def __init__(self, config, files, backend):
        check_backend(config, backend, files['load_path'])
        self.config = config
        self.backend = backend
        self.flame = load_model(files['flame_model_path'])
        if backend.n_vertices != len(self.flame.v_template):
            raise ValueError('%s: the FLAME model has %d vertices, the network predicts %d'
                             % (files['flame_model_path'], len(self.flame.v_template),
                                backend.n_vertices))
        self.faces = self.flame.f
        if config.template_mesh:
            self.faces = self._template_faces(config.template_mesh)
        # the texture's UV faces (ft) pair row by row with FLAME's own faces, whatever
        # --template_mesh says
        self.texture_data = (load_texture_data(files['flame_texture_data_path'],
                                               len(self.flame.v_template), len(self.flame.f))
                             if config.save_texture else None)
        # faces / UVs are the same for every frame: format their OBJ text once
        self.obj_mesh = ObjTopology(self.faces)
        self.obj_neutral = ObjTopology(self.flame.f)
        self.obj_textured = (ObjTopology(self.flame.f, self.texture_data['vt'],
                                         self.texture_data['ft'])
                             if config.save_texture else None)

    def _template_faces(self, path):
        mesh = load_mesh(path)
        if len(mesh.v) != len(self.flame.v_template):
            raise ValueError('%s: template mesh has %d vertices, the FLAME model %d'
                             % (path, len(mesh.v), len(self.flame.v_template)))
        return mesh.f

    def predict(self, frame):
        """Crop and run one util.pipeline.frames.Frame -> Prediction."""
        crop, proc_param = preprocess_image(frame.image, self.config.img_size, frame.box)
        vertices, theta = self.backend.predict(crop[None], get_parameters=True)
        return Prediction(frame.image, proc_param, vertices[0], theta[0])

    def outputs(self, name, pred):
        """{relative path: file content (bytes)} for every requested output of one frame."""
        cfg = self.config
        kinds = requested_kinds(cfg)
        cam = render_camera(pred.theta[:3], pred.proc_param, cfg.img_size)
        # panels of huge photos are drawn smaller (the texture still samples the full image)
        panel_image, panel_cam = fit_to_side(pred.image, cam, MAX_PANEL_SIDE)
        panel = four_panel(panel_image, pred.vertices, self.faces, panel_cam)
        out = {output_path(name, 'panel'): encode_image(panel)}
        if 'mesh' in kinds:
            out[output_path(name, 'mesh')] = self.obj_mesh.obj_text(pred.vertices).encode()
        params = {k: v.copy() for k, v in split_theta(
            pred.theta, cfg.pose_params, cfg.shape_params, cfg.expression_params).items()}
        if 'params' in kinds:
            out[output_path(name, 'params')] = npy_bytes(params)
        if 'neutral' in kinds:
            neutral = neutral_vertices(self.flame, params['shape'])
            out[output_path(name, 'neutral')] = self.obj_neutral.obj_text(neutral).encode()
        if 'texture' in kinds:
            texture = compute_texture_map(pred.image, pred.vertices, cam, self.texture_data,
                                          self.flame.f)
            image, obj = output_path(name, 'texture'), output_path(name, 'texture_obj')
            out[image] = encode_image(texture)
            out[output_path(name, 'texture_mtl')] = mtl_text(os.path.basename(image)).encode()
            out[obj] = self.obj_textured.obj_text(pred.vertices, mtl_name(obj)).encode()
        return out

    def save(self, name, pred, staging):
        """Compute and write every requested output of one prediction -> written paths.

        All-or-nothing (util.io.atomic.Staging.commit): the outputs appear together or not
        at all, whatever fails.
        """
        return staging.commit(self.outputs(name, pred))

    def process(self, frame, out_folder):
        """All outputs of one frame, one step after the other -> list of written paths."""
        with Staging(out_folder) as staging:
            return self.save(frame.name, self.predict(frame), staging)

    def run(self, items, out_folder, err=sys.stderr):
        """Process every frame of every item (util.pipeline.sources.Item) -> RunResult.

        A failing item or frame is reported in one line and skipped. Frame k's outputs are
        rendered and written on a worker thread while the network runs on frame k+1 (the
        network releases the GIL), so the two overlap. On KeyboardInterrupt the frame being
        written is finished (or rolled back, if it fails), then the run stops. Leftovers of a
        killed earlier run into ``out_folder`` are cleaned up first.
        """
        recover_staging(out_folder)
        # failures before writing are counted here; writes are counted on the worker thread
        # (where no signal interrupts the bookkeeping), in a counter of their own
        tally, written = collections.Counter(), collections.Counter()
        names = {}  # output NAME -> the source that claimed it ('a.jpg' and 'a.png' collide)
        interrupted = False
        with Staging(out_folder) as staging, \
                concurrent.futures.ThreadPoolExecutor(max_workers=1) as worker:
            writing = None
            try:
                for item in items:
                    for source, frame in self._frames(item, names, tally, err):
                        try:
                            pred = self.predict(frame)
                        except Exception as e:  # noqa: BLE001 - reported per frame
                            tally['failed'] += 1
                            report(source, e, err)
                            continue
                        if writing is not None:
                            writing.result()
                        writing = worker.submit(self._write, source, frame.name, pred, staging,
                                                written, err)
            except KeyboardInterrupt:
                interrupted = True
            # leaving the executor waits for the frame being written
        return RunResult(written['done'], tally['failed'] + written['failed'], interrupted)

    def _frames(self, item, names, tally, err):
        """(source, Frame) pairs of ``item`` whose names are free; failures reported, counted."""
        try:
            frames = item.read()
        except Exception as e:  # noqa: BLE001 - one bad item must not stop a batch
            tally['failed'] += 1
            report(item.source, e, err)
            return
        for frame in frames:
            claimed = names.setdefault(frame.name, item.source)
            if claimed != item.source:
                tally['failed'] += 1
                report(item.source, ValueError('outputs would overwrite those of %s (same name '
                                               '%s)' % (claimed, frame.name)), err)
                continue
            yield item.source, frame

    def _write(self, source, name, pred, staging, tally, err):
        """save() on the worker thread, reporting and counting the result there."""
        try:
            self.save(name, pred, staging)
        except Exception as e:  # noqa: BLE001 - reported per frame, the batch goes on
            tally['failed'] += 1
            report(source, e, err)
        else:
            tally['done'] += 1


def printable(text):
    """``text`` on one line: control characters and undecodable bytes of file names
    (surrogate escapes) written as backslash escapes."""
    raw = text.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')
    return ''.join(ch if ch.isprintable() else ch.encode('unicode_escape').decode('ascii')
                   for ch in raw)


def report(source, error, err):
    """Print one line 'error: SOURCE: message' for a failed item (its first line, with the
    source made printable first, so a file name with a newline cannot cut the message)."""
    msg = str(error).replace(source, printable(source)) if str(error) else type(error).__name__
    msg = next((line for line in msg.splitlines() if line.strip()), type(error).__name__)
    if printable(source) not in msg:
        msg = '%s: %s' % (printable(source), msg)
    print('error: ' + printable(msg), file=err)

