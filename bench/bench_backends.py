"""TensorFlow vs ONNX Runtime fp32 vs ONNX Runtime int8, in one run (ratios of this run).

    python -m bench.bench_backends [--n 20]

On a freshly generated full-size synthetic checkpoint (ResNet-50 v2 + regressor + FLAME
decoder; its weights are random, so the int8 errors are only indicative): per-image network
time of each backend, the int8 error against fp32, the whole demo (every output) over the
encoder-only forward of the same backend, the cold start of one image, and peak memory for a
folder of 100 images. Prints; asserts nothing.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# bench_demo sets the path and TensorFlow's log level; the sample and the flags are its own
from bench.bench_demo import ALL_OUTPUTS as ALL  # noqa: E402
from bench.bench_demo import IMAGE, ROOT, encoder_feature, image_items, per_call  # noqa: E402


def assets(folder):
    """{'load_path', 'flame_model_path', 'flame_texture_data_path'} of new synthetic files."""
    from synthetic.checkpoint import write_checkpoint
    from synthetic.flame import write_flame_assets
    flame = write_flame_assets(folder, seed=0)
    prefix = write_checkpoint(os.path.join(folder, 'ring_6_68641'), flame['flame_model'])
    return {'load_path': prefix, 'flame_model_path': flame['flame_model'],
            'flame_texture_data_path': flame['texture_data']}


def onnx_encoder(backend, feature_name, folder):
    """An OnnxBackend-like callable running only the encoder part of ``backend``'s model."""
    import onnx.utils
    import onnxruntime as ort
    path = os.path.join(folder, 'encoder-%s' % os.path.basename(backend.path))
    onnx.utils.extract_model(backend.path, path, [backend.input_name], [feature_name])
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return lambda images: session.run(None, {backend.input_name: images})


# the command, then its own peak memory: VmHWM of this process's address space, which starts
# afresh at exec (the rusage maxrss of a child would include this big parent's, copied at fork)
DRIVER = ("import sys, demo\n"
          "rc = demo.main(['demo'] + sys.argv[1:])\n"
          "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
          "print('VmHWM', hwm[0])\n"
          "sys.exit(rc)\n")


def cli(files, cache, out, backend, precision='fp32', img_path=IMAGE, extra=()):
    """Run the command in a new process -> (seconds, its peak RSS in MB)."""
    args = ['--img_path', img_path, '--out_folder', out, '--backend', backend, '--precision',
            precision] + list(extra)
    args += ['--%s=%s' % kv for kv in files.items()] + ['--%s=True' % k for k in ALL]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, '-c', DRIVER] + args, cwd=ROOT,
                          env=dict(os.environ, RINGNET_CACHE_DIR=cache), capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError('demo %s failed: %s' % (' '.join(args), proc.stderr[-2000:]))
    kb = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith('VmHWM')]
    return seconds, int(kb[-1]) / 1024.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--n', type=int, default=20)
    args = parser.parse_args(argv)
    from config import default_config
    from util.io.image_io import load_image
    from util.model.onnx_check import compare
    from util.model.onnx_quantize import calibration_images
    from util.pipeline import Pipeline
    from util.model.backend import load_backend, tf_backend
    from util.model.conversion_cache import SAMPLE_IMAGE
    from util.face.preprocess import preprocess_image

    work = tempfile.mkdtemp(prefix='ringnet_backends_')
    files = assets(work)
    cache = os.path.join(work, 'cache')
    start = time.perf_counter()
    tf_net = tf_backend(files['load_path'])
    tf_load = time.perf_counter() - start
    start = time.perf_counter()
    fp32 = load_backend(files['load_path'], backend='onnx', cache_dir=cache, say=print)
    convert_s = time.perf_counter() - start
    start = time.perf_counter()
    int8 = load_backend(files['load_path'], backend='onnx', precision='int8', cache_dir=cache,
                        say=print)
    quantize_s = time.perf_counter() - start
    print('TF load %.1f s; ONNX conversion + check %.1f s; int8 quantization + check %.1f s'
          % (tf_load, convert_s, quantize_s))

    crop = preprocess_image(load_image(IMAGE), 224)[0][None]
    feature = encoder_feature(tf_net.sess.graph)
    encoders = {'tf': lambda: tf_net.sess.run(feature, {tf_net.images: crop})}
    nets = {'tf': tf_net, 'onnx fp32': fp32, 'onnx int8': int8}
    for name in ('onnx fp32', 'onnx int8'):
        run = onnx_encoder(nets[name], feature.name, work)
        encoders[name] = lambda run=run: run(crop)
    forward = {k: per_call(lambda net=net: net.predict(crop, True), args.n)
               for k, net in nets.items()}
    encoder = {k: per_call(fn, args.n) for k, fn in encoders.items()}
    errors = compare(fp32, int8, calibration_images(SAMPLE_IMAGE))
    print('\nint8 vs fp32 on the calibration images: theta max %.3g, vertices max %.2f mm, '
          'mean %.2f mm' % (errors['theta_max'], errors['vertices_max_m'] * 1e3,
                            errors['vertices_mean_m'] * 1e3))

    whole = {}
    out = os.path.join(work, 'out')
    for name, net in nets.items():
        config = default_config(**ALL)
        pipe = Pipeline(config, files, net)
        pipe.run(image_items([IMAGE] * 2, config), out)  # warm: numba, graph optimisation
        whole[name] = per_call(lambda: pipe.run(image_items([IMAGE] * args.n, config), out), 1) / args.n

    print('\nper image (ms)      network  vs TF   encoder-only  whole demo  whole / encoder')
    for name in nets:
        print('  %-15s %8.1f  %5.2fx  %12.1f  %10.1f  %14.2fx'
              % (name, 1e3 * forward[name], forward['tf'] / forward[name],
                 1e3 * encoder[name], 1e3 * whole[name], whole[name] / encoder[name]))
    print('  int8 over fp32: %.2fx faster' % (forward['onnx fp32'] / forward['onnx int8']))

    folder = os.path.join(work, 'hundred')
    os.makedirs(folder)
    image = load_image(IMAGE)
    import cv2
    for k in range(100):
        cv2.imwrite(os.path.join(folder, '%03d.png' % k), image[k % 7:, k % 5:, ::-1])
    print('\ncold start, one image, every output (new process; cached conversion):')
    for backend, precision in (('tf', 'fp32'), ('onnx', 'fp32'), ('onnx', 'int8')):
        seconds, _ = cli(files, cache, os.path.join(work, 'cold'), backend, precision)
        print('  %-4s %-4s %6.2f s' % (backend, precision, seconds))
    print('peak RSS, a folder of 100 images, every output:')
    for backend, precision in (('tf', 'fp32'), ('onnx', 'fp32'), ('onnx', 'int8')):
        seconds, rss = cli(files, cache, os.path.join(work, 'rss-' + backend + precision),
                           backend, precision, folder, ['--quiet'])
        print('  %-4s %-4s %7.0f MB  (%.1f s, %.1f ms per image)'
              % (backend, precision, rss, seconds, 10 * seconds))


if __name__ == '__main__':
    main()
