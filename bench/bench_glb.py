"""The rigged GLB (--save_glb) against full FLAME, and what it costs to write.

    python bench/bench_glb.py [--flame_model generic_model.pkl] [--draws 20]

The file is evaluated as a glTF viewer does (morphs, then 4-weight skinning; read back with
tests/gltf_reader.py, not with the writer) and compared with FLAME evaluated in full
(smpl_webuser: pose correctives, every skinning weight, joints regressed from shape and
expression), i.e. mesh/NAME.obj. Per pose: max and mean vertex distance in mm over random
shapes and expressions (N(0, 1), RingNet's 100 / 50 coefficients), and how much of it each
approximation alone explains. Without --flame_model it runs on the synthetic FLAME of --demo
(its pose correctives are made up: the numbers show the method, the real model's differ).
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))

# (label, RingNet pose: global axis-angle, jaw axis-angle); global pi about x is frontal
POSES = (
    ('frontal, jaw closed', (np.pi, 0, 0, 0, 0, 0)),
    ('frontal, jaw 0.1 rad', (np.pi, 0, 0, 0.1, 0, 0)),
    ('frontal, jaw 0.2 rad', (np.pi, 0, 0, 0.2, 0, 0)),
    ('frontal, jaw 0.3 rad', (np.pi, 0, 0, 0.3, 0, 0)),
    ('yaw 0.6, jaw 0.2 rad', (np.pi, 0.6, 0, 0.2, 0, 0)),
    ('tilted, jaw 0.2 + side 0.05', (2.9, 0.3, 0.2, 0.2, 0.05, 0.02)),
)


def mm(distances):
    return 1000.0 * distances.max(), 1000.0 * distances.mean()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--flame_model', help='a FLAME pickle (default: the synthetic one)')
    parser.add_argument('--draws', type=int, default=20, help='shapes/expressions per pose')
    args = parser.parse_args(argv)

    from gltf_reader import evaluate, parse_glb
    from smpl_webuser.flame_params import flame_vertices, full_pose
    from smpl_webuser.lbs import lbs
    from smpl_webuser.serialization import load_model
    from util.outputs.glb import Animation, head_glb, top_influences

    path = args.flame_model
    if path is None:
        from synthetic.flame import write_flame_assets
        path = write_flame_assets(tempfile.mkdtemp(prefix='bench_glb_'))['flame_model']
    flame = load_model(path)
    joints, weights = top_influences(flame.weights)
    top4 = np.zeros_like(flame.weights)
    np.add.at(top4, (np.arange(len(top4))[:, None], joints), weights)  # unused slots add 0
    dropped = np.sort(flame.weights, axis=1)[:, :-4].sum(axis=1)
    print('model: %s (%d vertices, %d joints)' % ('synthetic' if args.flame_model is None
                                                    else path, len(flame.v_template),
                                                    len(flame.parents)))
    print('skinning weight beyond the 4 largest: max %.3g, vertices with any: %d'
          % (dropped.max(), int((dropped > 0).sum())))

    def flame_with(shape, expression, pose, posedirs=None, weights=None):
        betas = np.zeros((1, flame.shapedirs.shape[2]))
        betas[0, :100], betas[0, 300:350] = shape, expression
        return lbs(betas, full_pose(pose, 5).reshape(1, -1), flame.v_template, flame.shapedirs,
                   flame.posedirs if posedirs is None else posedirs, flame.J_regressor,
                   flame.parents, flame.weights if weights is None else weights)[0][0]

    rng = np.random.default_rng(0)
    no_correctives = np.zeros_like(flame.posedirs)
    print('\n%-30s %17s %17s %17s %17s' % ('pose (%d draws)' % args.draws, 'GLB vs FLAME',
                                           'correctives only', '4 weights only',
                                           'joints + float32'))
    print('%-30s %17s %17s %17s %17s' % ('', *['max / mean mm'] * 4))
    for label, pose in POSES:
        pose = np.asarray(pose, dtype=np.float64)
        rows = {key: [] for key in ('total', 'correctives', 'weights', 'rest')}
        for _ in range(args.draws):
            shape, expression = rng.normal(size=100), rng.normal(size=50)
            doc, binary = parse_glb(head_glb(flame, shape, expression, pose))
            glb = evaluate(doc, binary)[:len(flame.v_template)]
            full = flame_vertices(flame, pose, shape, expression)[0]
            rows['total'].append(np.linalg.norm(glb - full, axis=1))
            rows['correctives'].append(np.linalg.norm(
                flame_with(shape, expression, pose, posedirs=no_correctives) - full, axis=1))
            rows['weights'].append(np.linalg.norm(
                flame_with(shape, expression, pose, weights=top4) - full, axis=1))
            rig = flame_with(shape, expression, pose, posedirs=no_correctives, weights=top4)
            rows['rest'].append(np.linalg.norm(glb - rig, axis=1))
        print('%-30s' % label + ''.join(' %8.3f / %6.3f' % mm(np.concatenate(rows[key]))
                                        for key in ('total', 'correctives', 'weights', 'rest')))

    shape, expression, pose = rng.normal(size=100), rng.normal(size=50), np.asarray(POSES[2][1])
    for label, kwargs in (('static', {}), ('300-frame animation', {'animation': Animation(
            np.arange(300) / 30.0, np.tile(pose, (300, 1)), rng.normal(size=(300, 50)))})):
        head_glb(flame, shape, expression, pose, **kwargs)  # warm (numba, caches)
        start = time.perf_counter()
        for _ in range(5):
            data = head_glb(flame, shape, expression, pose, **kwargs)
        print('\nwrite %s: %.1f ms, %.2f MB' % (label, (time.perf_counter() - start) / 5 * 1000,
                                               len(data) / 1e6), end='')
    print()


if __name__ == '__main__':
    main()
