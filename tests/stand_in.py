"""Runs of the command in child processes with a stand-in network, for tests about what a run
does around the network (its output folder, lock, manifest), not about the network itself.

The stand-in predicts FLAME's template for every image, so a run costs the output rendering
only. Children come from a multiprocessing fork server that has imported the pipeline once,
so starting one takes milliseconds, not an interpreter's start-up. A child's stdout and stderr
go to files; its exit status is the command's.
"""
import multiprocessing
import os
import sys
import time

PRELOAD = ['numpy', 'cv2', 'config', 'util.pipeline.command', 'util.pipeline.runner',
           'util.io.safe_pickle', 'stand_in']


class TemplateBackend:
    """The backend interface (util/model/backend.py) with FLAME's template as every
    prediction and a fixed camera: images (N,S,S,3) -> vertices (N,V,3), theta (N,159)."""
    image_size = 224
    n_theta = 159
    label = 'stand-in'

    def __init__(self, template):
        self.template = template  # (V,3) float32
        self.n_vertices = len(template)

    def predict(self, images, get_parameters=True):
        import numpy as np
        theta = np.zeros((len(images), self.n_theta), np.float32)
        theta[:, 0] = 8.0  # the camera's scale: the mesh fills the crop
        return np.repeat(self.template[None], len(images), 0), theta


def child(argv, files, template, folder, hooks=''):
    """Run the command ``argv`` (flags) in this child -> os._exit(its status). Writes
    FOLDER/loaded-PID when the network would load; there the load waits for FOLDER/go when
    that file's parent has a 'hold' file; the stand-in predicts ``template`` (a .npy of FLAME's
    template). ``hooks``: Python run first (fault injection)."""
    out = open(os.path.join(folder, 'stdout-%d' % os.getpid()), 'w')
    err = open(os.path.join(folder, 'stderr-%d' % os.getpid()), 'w')
    sys.stdout, sys.stderr = out, err
    status = 99
    try:
        import numpy as np

        import config
        import util.pipeline.command as command

        def load_backend(*args, **kwargs):
            open(os.path.join(folder, 'loaded-%d' % os.getpid()), 'w').close()
            if os.path.exists(os.path.join(folder, 'hold')):
                deadline = time.time() + 60
                while not os.path.exists(os.path.join(folder, 'go')) and time.time() < deadline:
                    time.sleep(0.002)
            return TemplateBackend(np.load(template))

        command.load_backend = load_backend
        exec(hooks, {'folder': folder})
        status = command.run_command(config.get_config(['demo'] + list(argv)),
                                     demo_files=lambda: dict(files))
    except BaseException:  # noqa: BLE001 - the test reads the traceback in stderr
        import traceback
        traceback.print_exc()
    finally:
        out.close()
        err.close()
        os._exit(status)


class Children:
    """Starts ``child`` processes from one fork server (see the module docstring)."""

    def __init__(self, files, folder):
        import numpy as np

        from util.io.safe_pickle import load_pickle
        self.files = files
        self.template = os.path.join(str(folder), 'template.npy')
        np.save(self.template, np.asarray(load_pickle(files['flame_model_path'])['v_template'],
                                          np.float32))
        self.context = multiprocessing.get_context('forkserver')
        self.context.set_forkserver_preload(PRELOAD)

    def start(self, argv, folder, hooks=''):
        proc = self.context.Process(target=child, args=(argv, self.files, self.template,
                                                        str(folder), hooks))
        proc.start()
        return proc

    def run(self, argv, folder, hooks='', timeout=120):
        """Run to the end -> (status, stdout, stderr, loaded: did the network load)."""
        proc = self.start(argv, folder, hooks)
        proc.join(timeout)
        return result(proc, folder)


def result(proc, folder):
    """(exit status, stdout, stderr, loaded) of a finished child."""
    def read(kind):
        with open(os.path.join(str(folder), '%s-%d' % (kind, proc.pid))) as fh:
            return fh.read()
    loaded = os.path.exists(os.path.join(str(folder), 'loaded-%d' % proc.pid))
    return proc.exitcode, read('stdout'), read('stderr'), loaded
