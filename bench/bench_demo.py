"""Whole demo (every output on) vs the encoder-only forward, in steady state, and the cold start.

    python bench/bench_demo.py [--n 20]

Runs on the --demo assets (synthetic model and checkpoint, same graph size as the original:
ResNet-50 at 224² + regressor + FLAME decoder). Reports ratios measured in this one run.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')
ALL_OUTPUTS = dict(save_obj_file=True, save_flame_parameters=True, neutralize_expression=True,
                   save_texture=True)


def encoder_feature(graph):
    """The (1, 2048) image feature: the ResNet output that the regressor concatenates with theta."""
    for op in graph.get_operations():
        if op.type == 'ConcatV2':
            for t in op.inputs:
                if t.shape.as_list() == [1, 2048]:
                    return t
    raise RuntimeError('no (1, 2048) encoder feature found in the graph')


def image_items(paths, config):
    """The pipeline's work items for image files (each NAME from its path)."""
    from util.outputs.naming import output_name
    from util.pipeline.inputs import Entry
    from util.pipeline.reading import work_items
    return work_items([Entry(p, output_name(p)) for p in paths], config)


def per_call(fn, n, rounds=3):
    """Seconds per call of fn: the best of ``rounds`` means over n calls (this machine is noisy)."""
    fn()  # warm
    means = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        means.append((time.perf_counter() - start) / n)
    return min(means)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--n', type=int, default=20)
    args = parser.parse_args()

    from bench.stage_timer import timed_stages
    from config import default_config
    from util.io.image_io import load_image
    from util.pipeline import Pipeline
    from util.model.backend import load_backend
    from synthetic.demo_assets import ensure_demo_assets
    from util.face.frames import whole_picture
    from util.face.preprocess import preprocess_image

    start = time.perf_counter()
    config = default_config(demo=True, **ALL_OUTPUTS)
    files = ensure_demo_assets()
    assets_s = time.perf_counter() - start
    start = time.perf_counter()
    net = load_backend(files['load_path'])
    pipe = Pipeline(config, files, net)
    load_s = time.perf_counter() - start

    out = tempfile.mkdtemp(prefix='ringnet_bench_')
    pipe.run(image_items([IMAGE] * 2, config), out)  # warm: numba JIT, TF graph optimisation
    # the whole demo untimed, then the same again with every stage timed from outside
    whole = per_call(lambda: pipe.run(image_items([IMAGE] * args.n, config), out), 1) / args.n
    with timed_stages(net) as totals:
        pipe.run(image_items([IMAGE] * args.n, config), out)
    stages = {k: v / args.n for k, v in totals.items()}
    picture = whole_picture('serial', load_image(IMAGE))
    serial = per_call(lambda: pipe.process(picture, out), args.n)

    crop, _ = preprocess_image(load_image(IMAGE), 224)
    feed = {net.images: crop[None]}
    feature = encoder_feature(net.sess.graph)
    encoder = per_call(lambda: net.sess.run(feature, feed), args.n)
    network = per_call(lambda: net.predict(crop[None], True), args.n)

    cmd = [sys.executable, '-m', 'demo', '--demo', '--img_path', IMAGE, '--out_folder',
           tempfile.mkdtemp(prefix='ringnet_cold_')] + ['--%s=True' % k for k in ALL_OUTPUTS]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    cold = time.perf_counter() - start

    print('demo assets ready (generated or cached): %.2f s' % assets_s)
    print('model + FLAME load:                      %.2f s' % load_s)
    print('per image, steady state (ms); stages from one timed round of %d images, whole demo '
          'best of 3 untimed rounds:' % args.n)
    for k in ('read', 'preprocess', 'network', 'render', 'neutralize', 'texture', 'obj text',
              'png', 'write'):
        print('  %-12s %8.1f' % (k, 1e3 * stages.get(k, 0.0)))
    print('  %-12s %8.1f  (stages overlapped: outputs of image k written while the network '
          'runs image k+1)' % ('whole demo', 1e3 * whole))
    print('  %-12s %8.1f  (same, one image after the other)' % ('serial', 1e3 * serial))
    print('encoder-only forward:   %8.1f ms' % (1e3 * encoder))
    print('full network forward:   %8.1f ms' % (1e3 * network))
    print('ratio whole demo / encoder-only forward: %.2fx (goal <= 1.3x)' % (whole / encoder))
    print('cold start, one image, all outputs (new process, cached assets): %.2f s' % cold)


if __name__ == '__main__':
    main()
