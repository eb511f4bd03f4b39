"""Time the batched numpy FLAME forward pass at full size (V=5023, 5 joints, 400 betas).

Usage: python bench/bench_flame.py [--repeats 20]
"""
import argparse
import os
import sys
import time

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from smpl_webuser.verts import FlameModel  # noqa: E402


def random_model(seed=0, n_verts=5023, n_betas=400):
    """Full-size FLAME-shaped arrays (values random; only the sizes matter for timing)."""
    rng = np.random.default_rng(seed)
    return FlameModel({
        'v_template': rng.normal(size=(n_verts, 3)),
        'shapedirs': rng.normal(size=(n_verts, 3, n_betas)) * 1e-3,
        'posedirs': rng.normal(size=(n_verts, 3, 36)) * 1e-3,
        'J_regressor': sp.random(5, n_verts, density=0.05, format='csc', random_state=seed),
        'weights': rng.dirichlet(np.ones(5), size=n_verts),
        'kintree_table': np.array([[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]]),
        'f': np.zeros((0, 3), dtype=np.int64), 'bs_type': 'lrotmin', 'bs_style': 'lbs',
        'J': np.zeros((5, 3)), 'parents': np.array([-1, 0, 1, 1, 1]),
    })


def time_forward(model, batch, repeats, seed=1):
    """Best-of-``repeats`` seconds for one forward call on a batch of random parameters."""
    rng = np.random.default_rng(seed)
    betas = rng.normal(size=(batch, 400))
    pose = rng.normal(size=(batch, 15)) * 0.3
    trans = rng.normal(size=(batch, 3))
    model.forward(betas, pose, trans)  # warm-up
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        model.forward(betas, pose, trans)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=20)
    args = parser.parse_args(argv)
    model = random_model()
    for batch in (1, 64):
        seconds = time_forward(model, batch, args.repeats)
        print('batch %3d: %8.2f ms per call, %7.3f ms per mesh'
              % (batch, seconds * 1e3, seconds * 1e3 / batch))


if __name__ == '__main__':
    main()
