"""Fast by default (issue #19), from one run: the ONNX conversion before -> after, the try-it
command's first and second run, images/s at batch 1/4/16 (fp32, int8), the whole demo per
image over the bare encoder on the default path, and its images/s at --batch_size 1/4/16.

    python -m bench.bench_convert [--n 20]

On a freshly generated full-size synthetic checkpoint (ResNet-50 v2 + regressor + FLAME
decoder, 120 MB of weights). Each conversion runs in a fresh process; its peak resident memory
is the kernel's (ru_maxrss of the process, and of its child for the converter process).
"before" is the conversion as it was: the frozen graph with its weights through tf2onnx, in
the process that then runs the model. Prints; asserts nothing.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.bench_backends import assets, onnx_encoder  # noqa: E402
from bench.bench_demo import ALL_OUTPUTS, IMAGE, ROOT, encoder_feature, image_items, per_call  # noqa: E402,E501

# the conversion before #19, in one process: freeze, tf2onnx on the whole graph, check
BEFORE = '''
import json, resource, sys, time
start = time.perf_counter()
import tensorflow as tf, tf2onnx
from util.model.backend import tf_backend
from util.model.onnx_backend import OnnxBackend
from util.model.onnx_check import check_images, compare
from util.model.tf_backend import THETA_OP, VERTS_OP
net = tf_backend(sys.argv[1])
frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
    net.sess, net.sess.graph.as_graph_def(), [THETA_OP, VERTS_OP])
model, _ = tf2onnx.convert.from_graph_def(
    frozen, input_names=[net.images.name], output_names=[THETA_OP + ':0', VERTS_OP + ':0'],
    opset=17, tensors_to_rename={THETA_OP + ':0': 'theta', VERTS_OP + ':0': 'vertices'})
with open(sys.argv[2], 'wb') as fh:
    fh.write(model.SerializeToString())
errors = compare(net, OnnxBackend(sys.argv[2]), check_images())
print(json.dumps({'seconds': time.perf_counter() - start, 'errors': errors,
                  'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''

# the conversion now, as `auto` does it on first use (the converter in a child process)
AFTER = '''
import json, resource, sys, time
start = time.perf_counter()
from util.model.backend import load_backend
from util.model.conversion_cache import ConversionCache
backend = load_backend(sys.argv[1], backend='auto', cache_dir=sys.argv[2], say=lambda line: None)
record = ConversionCache(sys.argv[1], sys.argv[2]).record('fp32')
print(json.dumps({'seconds': time.perf_counter() - start, 'record': record,
                  'label': backend.label,
                  'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  'child_peak_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
'''


def python(code, *args):
    """Run ``code`` in a fresh interpreter (repository root) -> its last stdout line as JSON."""
    proc = subprocess.run([sys.executable, '-c', code] + list(args), cwd=ROOT,
                          capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def try_it(cache, out):
    """The README's try-it command -> (seconds, its summary line)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, '-m', 'demo', '--demo', '--img_path',
                           './input_images/000001.jpg', '--out_folder', out], cwd=ROOT,
                          capture_output=True, text=True, env=dict(os.environ,
                                                                  RINGNET_CACHE_DIR=cache))
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return seconds, proc.stdout.strip().splitlines()[-1]


def images_per_s(backend, crops, batch, rounds=3):
    """Images per second of ``backend.predict`` on ``crops`` in batches of ``batch``: the
    best of ``rounds`` passes (after a warm one)."""
    def one_pass():
        for start in range(0, len(crops), batch):
            backend.predict(crops[start:start + batch], True)
    return len(crops) / per_call(one_pass, 1, rounds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--n', type=int, default=20)
    args = parser.parse_args(argv)
    import numpy as np
    work = tempfile.mkdtemp(prefix='ringnet_convert_')
    try:
        files = assets(work)
        before = python(BEFORE, files['load_path'], os.path.join(work, 'before.onnx'))
        after = python(AFTER, files['load_path'], os.path.join(work, 'cache'))
        print('conversion (full-size graph, 120 MB of weights), each in a new process:')
        print('  before: %5.1f s, peak RSS %5.0f MB (one process); theta max %.2g, vertices '
              'max %.2g m vs TF' % (before['seconds'], before['peak_mb'],
                                    before['errors']['theta_max'],
                                    before['errors']['vertices_max_m']))
        errors = after['record']['errors_vs_tf']
        print('  after:  %5.1f s, peak RSS %5.0f MB (converter process; the run itself %.0f '
              'MB); theta max %.2g, vertices max %.2g m vs TF; batch %s'
              % (after['seconds'], after['child_peak_mb'], after['peak_mb'],
                 errors['theta_max'], errors['vertices_max_m'], after['record']['batch']))
        print('  ratio:  %.1fx faster, %.1fx less memory'
              % (before['seconds'] / after['seconds'],
                 before['peak_mb'] / after['child_peak_mb']))

        cache = os.path.join(work, 'try-it-cache')
        first, _ = try_it(cache, os.path.join(work, 'try1'))
        second, line = try_it(cache, os.path.join(work, 'try2'))
        print('\ntry-it command on a fresh cache: first run %.1f s, second run %.1f s'
              % (first, second))
        print('  its summary: %s' % line)

        from config import default_config
        from util.face.preprocess import preprocess_image
        from util.io.image_io import load_image
        from util.model.backend import load_backend, tf_backend
        from util.pipeline import Pipeline
        cache = os.path.join(work, 'cache')
        fp32 = load_backend(files['load_path'], backend='auto', cache_dir=cache)
        int8 = load_backend(files['load_path'], backend='auto', precision='int8',
                            cache_dir=cache, say=lambda line: None)
        image = load_image(IMAGE)
        crops = np.stack([preprocess_image(image[k % 7:, k % 5:], 224)[0]
                          for k in range(32)]).astype(np.float32)
        print('\nimages/s of the network (32 crops; batch 1 / 4 / 16), %s:' % fp32.providers[0])
        for name, backend in (('fp32', fp32), ('int8', int8)):
            rates = [images_per_s(backend, crops, b) for b in (1, 4, 16)]
            same = np.array_equal(backend.predict(crops[:16])[1], np.concatenate(
                [backend.predict(crop[None])[1] for crop in crops[:16]]))
            print('  %s  %6.1f  %6.1f  %6.1f   (batch 16 bit-identical to single images: %s)'
                  % (name, rates[0], rates[1], rates[2], same))
        tf_net = tf_backend(files['load_path'])
        print('  TensorFlow (batch 1 only): %6.1f' % images_per_s(tf_net, crops[:8], 1))

        run = onnx_encoder(fp32, encoder_feature(tf_net.sess.graph).name, work)
        one = crops[:1]
        encoder = per_call(lambda: run(one), args.n)
        network = per_call(lambda: fp32.predict(one, True), args.n)
        config = default_config(**ALL_OUTPUTS)
        pipe = Pipeline(config, files, fp32)
        out = os.path.join(work, 'out')
        pipe.run(image_items([IMAGE] * 2, config), out)  # warm: numba, graph optimisation
        whole = per_call(lambda: pipe.run(image_items([IMAGE] * args.n, config), out),
                         1) / args.n
        print('\nsteady state on the default path (%s, batch 1, the seven outputs), ms per '
              'image:' % fp32.label)
        print('  bare encoder %.1f, network %.1f, whole demo %.1f: whole / encoder %.2fx'
              % (1e3 * encoder, 1e3 * network, 1e3 * whole, whole / encoder))
        rates = []
        for batch in (1, 4, 16):
            config = default_config(batch_size=batch, **ALL_OUTPUTS)
            pipe = Pipeline(config, files, fp32)
            rates.append(args.n / per_call(lambda: pipe.run(image_items(
                [IMAGE] * args.n, config), out), 1))
        print('  whole demo images/s at --batch_size 1 / 4 / 16: %.1f / %.1f / %.1f'
              % tuple(rates))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
