"""Image -> RingNet prediction -> every output of the original demo.

The network and the FLAME files are loaded once per ``Pipeline``; images then stream through.
Each image's outputs are all computed in memory first, then written to temporary files that
are renamed into place only once every one of them is written: a failing image leaves none of
its outputs (and no partial file) behind, and never stops the rest of the batch.
"""
import collections
import concurrent.futures
import contextlib
import io
import os
import sys
import time
import types

import numpy as np

from run_RingNet import RingNet_inference
from smpl_webuser.serialization import load_model
from util.atomic import atomic_path
from util.camera import render_camera, to_camera
from util.flame_params import split_theta
from util.image_io import encode_image, load_image
from util.mesh_io import ObjTopology, load_mesh, mtl_text
from util.preprocess import preprocess_image
from util.project_on_mesh import compute_texture_map
from util.renderer import four_panel
from util.texture_data import load_texture_data
from util.using_flame_parameters import neutral_vertices

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')

Prediction = collections.namedtuple('Prediction', 'image proc_param vertices theta')


def list_images(img_path):
    """A file -> [it]; a folder -> its image files, sorted (not recursive)."""
    if os.path.isdir(img_path):
        names = sorted(n for n in os.listdir(img_path)
                       if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith('.'))
        return [os.path.join(img_path, n) for n in names]
    return [img_path]


def output_name(img_path):
    """The original's NAME: the file name without its extension (also right for '.jpeg')."""
    return os.path.splitext(os.path.basename(img_path))[0]


def npy_bytes(value):
    """The bytes ``np.save`` writes for ``value`` (a dict is saved as a 0-d object array)."""
    buffer = io.BytesIO()
    np.save(buffer, value)
    return buffer.getvalue()


class Pipeline:
    """RingNet on a stream of images. ``files`` comes from util.model_files.resolve_model_files."""

    def __init__(self, config, files):
        self.config = config
        self.timings = collections.Counter()
        start = time.perf_counter()
        self.net = RingNet_inference(types.SimpleNamespace(load_path=files['load_path'],
                                                           batch_size=config.batch_size))
        n_theta = 3 + config.pose_params + config.shape_params + config.expression_params
        if n_theta != self.net.theta.shape[-1]:
            raise ValueError('%s: the network predicts %d parameters, but 3 + --pose_params + '
                             '--shape_params + --expression_params = %d'
                             % (files['load_path'], self.net.theta.shape[-1], n_theta))
        if tuple(self.net.image_shape[:2]) != (config.img_size, config.img_size):
            raise ValueError('%s: the network takes %dx%d images, but --img_size is %d'
                             % (files['load_path'], self.net.image_shape[0],
                                self.net.image_shape[1], config.img_size))
        self.flame = load_model(files['flame_model_path'])
        if self.net.verts.shape[1] != len(self.flame.v_template):
            raise ValueError('%s: the FLAME model has %d vertices, the network predicts %d'
                             % (files['flame_model_path'], len(self.flame.v_template),
                                self.net.verts.shape[1]))
        self.faces = self.flame.f
        if config.template_mesh:
            self.faces = self._template_faces(config.template_mesh)
        # the texture's UV faces (ft) pair row by row with FLAME's own faces, whatever
        # --template_mesh says
        self.texture_data = (load_texture_data(files['flame_texture_data_path'],
                                               len(self.flame.v_template), len(self.flame.f))
                             if config.save_texture else None)
        # faces / UVs are the same for every image: format their OBJ text once
        self.obj_mesh = ObjTopology(self.faces)
        self.obj_neutral = ObjTopology(self.flame.f)
        self.obj_textured = (ObjTopology(self.flame.f, self.texture_data['vt'],
                                         self.texture_data['ft'])
                             if config.save_texture else None)
        self.timings['load'] += time.perf_counter() - start

    def _template_faces(self, path):
        mesh = load_mesh(path)
        if len(mesh.v) != len(self.flame.v_template):
            raise ValueError('%s: template mesh has %d vertices, the FLAME model %d'
                             % (path, len(mesh.v), len(self.flame.v_template)))
        return mesh.f

    def _timed(self, stage, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        self.timings[stage] += time.perf_counter() - start
        return out

    def predict(self, img_path):
        """Read, crop and run one image -> Prediction (vertices (V,3), theta (159,))."""
        image = self._timed('read', load_image, img_path)
        crop, proc_param = self._timed('preprocess', preprocess_image, image, self.config.img_size)
        vertices, theta = self._timed('network', self.net.predict, crop[None], True)
        return Prediction(image, proc_param, vertices[0], theta[0])

    def outputs(self, name, pred):
        """{relative path: file content (bytes)} for every requested output."""
        cfg = self.config
        cam = render_camera(pred.theta[:3], pred.proc_param, cfg.img_size)
        v_cam = to_camera(pred.vertices, cam)
        panel = self._timed('render', four_panel, pred.image, v_cam, self.faces, cam.f, cam.c)
        out = {os.path.join('images', name + '.png'): self._timed('png', encode_image, panel)}
        if cfg.save_obj_file:
            out[os.path.join('mesh', name + '.obj')] = self._timed(
                'obj text', self.obj_mesh.obj_text, pred.vertices).encode()
        params = {k: v.copy() for k, v in split_theta(
            pred.theta, cfg.pose_params, cfg.shape_params, cfg.expression_params).items()}
        if cfg.save_flame_parameters:
            out[os.path.join('params', name + '.npy')] = npy_bytes(params)
        if cfg.neutralize_expression:
            neutral = self._timed('neutralize', neutral_vertices, self.flame, params['shape'])
            out[os.path.join('neutral_mesh', name + '.obj')] = self._timed(
                'obj text', self.obj_neutral.obj_text, neutral).encode()
        if cfg.save_texture:
            texture = self._timed('texture', compute_texture_map, pred.image, pred.vertices,
                                  cam, self.texture_data, self.flame.f)
            out[os.path.join('texture', name + '.png')] = self._timed('png', encode_image,
                                                                      texture)
            out[os.path.join('texture', name + '.mtl')] = mtl_text(name + '.png').encode()
            out[os.path.join('texture', name + '.obj')] = self._timed(
                'obj text', self.obj_textured.obj_text, pred.vertices, name + '.mtl').encode()
        return out

    def save(self, name, pred, out_folder):
        """Compute and write every requested output of one prediction -> written paths.

        All-or-nothing: each output goes to a temporary file; they are renamed into place only
        after all were written (util.atomic), and removed if any of them fails.
        """
        contents = self.outputs(name, pred)
        start = time.perf_counter()
        paths = [os.path.join(out_folder, rel) for rel in contents]
        with contextlib.ExitStack() as stack:
            for path, data in zip(paths, contents.values()):
                with open(stack.enter_context(atomic_path(path)), 'wb') as fh:
                    fh.write(data)
        self.timings['write'] += time.perf_counter() - start
        return paths

    def process(self, img_path, out_folder):
        """All outputs of one image -> list of written paths."""
        return self.save(output_name(img_path), self.predict(img_path), out_folder)

    def run(self, img_paths, out_folder, err=sys.stderr):
        """Process every image; a failing one is reported in one line and skipped. -> #failed.

        Image k's outputs are rendered and written on a worker thread while the network runs
        on image k+1 (TensorFlow releases the GIL), so the two overlap.
        """
        failed = 0
        names = {}  # output NAME -> the image that claimed it ('a.jpg' and 'a.png' collide)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as worker:
            pending = None
            for img_path in img_paths:
                claimed = names.setdefault(output_name(img_path), img_path)
                if claimed != img_path:
                    failed += 1
                    report(img_path, ValueError('outputs would overwrite those of %s (same name '
                                                '%s)' % (claimed, output_name(img_path))), err)
                    continue
                try:
                    pred = self.predict(img_path)
                except Exception as e:  # one bad item must not stop a batch of a million
                    failed += 1
                    report(img_path, e, err)
                    continue
                failed += finish(pending, err)
                pending = img_path, worker.submit(self.save, output_name(img_path), pred,
                                                  out_folder)
            failed += finish(pending, err)
        return failed


def report(img_path, error, err):
    """Print one line 'error: PATH: message' for a failed image."""
    msg = str(error).splitlines()[0] if str(error) else type(error).__name__
    if img_path not in msg:
        msg = '%s: %s' % (img_path, msg)
    print('error: ' + msg, file=err)


def finish(pending, err):
    """Wait for a (img_path, future) from Pipeline.run -> 1 if it failed (reported), else 0."""
    if pending is None:
        return 0
    img_path, future = pending
    try:
        future.result()
    except Exception as e:  # noqa: BLE001 - reported per image, the batch goes on
        report(img_path, e, err)
        return 1
    return 0
