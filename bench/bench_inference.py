"""Time RingNet inference on this machine: model load, then per-image predict (1 and 32 images).

Usage: python -m bench.bench_inference [--load_path PREFIX]
Without --load_path a synthetic full-size checkpoint (ResNet-50 v2 + 5023-vertex FLAME) is
generated into a temporary folder first (its generation time is printed too).
"""
import argparse
import os
import tempfile
import time

import numpy as np

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TensorFlow loads: placement chatter


def timed(fn, *args):
    """(result, seconds) of fn(*args)."""
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def synthetic_checkpoint(folder):
    """Prefix of a freshly generated full-size synthetic checkpoint in ``folder``."""
    from synthetic.checkpoint import write_checkpoint
    from synthetic.flame import write_flame_assets
    flame = write_flame_assets(folder, seed=0)
    prefix, seconds = timed(write_checkpoint, os.path.join(folder, 'ring_6_68641'),
                            flame['flame_model'])
    print('checkpoint generation: %.2f s' % seconds)
    return prefix


def bench(load_path, repeats=3):
    """Print load time and the best-of-``repeats`` per-image predict time for 1 and 32 images."""
    from config import default_config
    from util.model.tf_backend import RingNet_inference
    net, seconds = timed(RingNet_inference, default_config(load_path=load_path))
    print('model load: %.2f s' % seconds)
    images = np.random.default_rng(0).uniform(-1, 1, (32, 224, 224, 3)).astype(np.float32)
    net.predict(images[:1])  # warm-up: first run builds the executor
    for n in (1, 32):
        best = min(timed(net.predict, images[:n])[1] for _ in range(repeats))
        print('predict %2d image(s): %.3f s per image' % (n, best / n))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--load_path', default='', help='checkpoint prefix (default: synthetic)')
    args = parser.parse_args(argv)
    if args.load_path:
        bench(args.load_path)
        return
    with tempfile.TemporaryDirectory() as folder:
        bench(synthetic_checkpoint(folder))


if __name__ == '__main__':
    main()
