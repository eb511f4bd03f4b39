"""synthetic/checkpoint.py: the files have the original's layout, and the graph computes FLAME right.

Expectations come from outside the generator: slim's published ResNet-50 structure and parameter
count, the .meta parsed as a protobuf, and A1's numpy FLAME (smpl_webuser.lbs) for the vertices.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from smpl_webuser.lbs import lbs
from smpl_webuser.serialization import load_model_arrays
from flame_reference import theta_to_flame_inputs

tf1 = tf.compat.v1
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# torchvision/Keras ResNet-50 (same layers as slim v1): 25,557,032 parameters, of which the
# 1000-class logits layer holds 2048 * 1000 + 1000. Conv kernels + BN gamma/beta make the rest.
RESNET50_V1_PARAMS = 25557032 - (2048 * 1000 + 1000)


@pytest.fixture(scope='module')
def checkpoint_mean(tmp_path_factory, flame_assets):
    """Made through the command line, as a user would."""
    prefix = os.path.join(str(tmp_path_factory.mktemp('ckpt_mean')), 'ring_6_68641')
    proc = subprocess.run([sys.executable, '-m', 'synthetic.checkpoint', '--flame',
                           flame_assets['flame_model'], '--out', prefix, '--mean_only'],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return prefix


@pytest.fixture(scope='module')
def model(flame_assets):
    return load_model_arrays(flame_assets['flame_model'])


def variables(prefix):
    return dict(tf.train.list_variables(prefix))


def graph_nodes(prefix):
    meta = tf1.MetaGraphDef()
    with open(prefix + '.meta', 'rb') as fh:
        meta.ParseFromString(fh.read())
    return {node.name: node for node in meta.graph_def.node}


def run_saved_graph(prefix, images, input_name='input_images:0'):
    """Evaluate the saved graph the original demo's way: import_meta_graph + restore."""
    graph = tf.Graph()
    with graph.as_default():
        saver = tf1.train.import_meta_graph(prefix + '.meta')
        config = tf1.ConfigProto(allow_soft_placement=True)
        with tf1.Session(graph=graph, config=config) as sess:
            saver.restore(sess, prefix)
            outs = [sess.run(['add_2:0', 'Flamenetnormal_2/Add_9:0'], {input_name: im[None]})
                    for im in images]
    return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


def numpy_flame(model, theta):
    betas, pose = theta_to_flame_inputs(np.asarray(theta, np.float64))
    verts, _ = lbs(betas, pose, model['v_template'], model['shapedirs'], model['posedirs'],
                   model['J_regressor'], model['parents'], model['weights'])
    return verts


def test_resnet_v1_variables_follow_slim(checkpoint_v1):
    names = variables(checkpoint_v1)
    resnet = {k: v for k, v in names.items() if k.startswith('resnet_v1_50/')}
    # 53 convolutions (1 root + 16 units x 3 + 4 projection shortcuts), each with a BatchNorm
    assert sum(k.endswith('/weights') for k in resnet) == 53
    assert sum('/BatchNorm/' in k for k in resnet) == 53 * 4
    assert len(resnet) == 53 * 5
    params = sum(np.prod(s) for k, s in resnet.items() if not k.endswith(('moving_mean',
                                                                          'moving_variance')))
    assert params == RESNET50_V1_PARAMS
    unit = 'resnet_v1_50/block%d/unit_%d/bottleneck_v1/'
    assert resnet['resnet_v1_50/conv1/weights'] == [7, 7, 3, 64]
    assert resnet[unit % (1, 1) + 'shortcut/weights'] == [1, 1, 64, 256]
    assert resnet[unit % (3, 6) + 'conv2/BatchNorm/moving_variance'] == [256]
    assert resnet[unit % (4, 3) + 'conv3/weights'] == [1, 1, 512, 2048]
    assert unit % (1, 2) + 'shortcut/weights' not in resnet
    assert sorted(k for k in resnet if k.startswith('resnet_v1_50/block4/unit_1/bottleneck_v1/'
                                                     'shortcut/')) == [
        unit % (4, 1) + 'shortcut/BatchNorm/' + s
        for s in ('beta', 'gamma', 'moving_mean', 'moving_variance')] + [
        unit % (4, 1) + 'shortcut/weights']


def test_resnet_v2_variables_follow_slim(checkpoint_v2):
    resnet = {k: v for k, v in variables(checkpoint_v2).items()
              if k.startswith('resnet_v2_50/')}
    unit = 'resnet_v2_50/block%d/unit_%d/bottleneck_v2/'
    # root conv with biases; per unit: preact BN, conv1+BN, conv2+BN, conv3 with biases
    assert resnet['resnet_v2_50/conv1/biases'] == [64]
    assert 'resnet_v2_50/conv1/BatchNorm/beta' not in resnet
    assert resnet[unit % (1, 1) + 'preact/gamma'] == [64]
    assert resnet[unit % (1, 1) + 'shortcut/biases'] == [256]
    assert resnet[unit % (2, 1) + 'preact/moving_mean'] == [256]
    assert resnet[unit % (4, 3) + 'conv3/biases'] == [2048]
    assert unit % (4, 3) + 'conv3/BatchNorm/beta' not in resnet
    assert resnet['resnet_v2_50/postnorm/moving_variance'] == [2048]
    assert len(resnet) == 2 + 16 * 16 + 4 * 2 + 4


def test_regressor_and_flame_variables(checkpoint_v2, model):
    names = variables(checkpoint_v2)
    n_verts = len(model['v_template'])
    assert names['3D_module/fc1/weights'] == [2048 + 159, 512]
    assert names['3D_module/fc2/biases'] == [512]
    assert names['3D_module/fc3/weights'] == [512, 159]
    assert names['mean_param'] == [1, 159]
    assert names['shapedirs'] == [400, 3 * n_verts]
    assert names['posedirs'] == [36, 3 * n_verts]
    assert names['J_regressor'] == [n_verts, 5]
    mean = tf.train.load_checkpoint(checkpoint_v2).get_tensor('mean_param')[0]
    np.testing.assert_allclose(mean[3:9], [np.pi, 0, 0, 0, 0, 0], rtol=1e-6)
    assert not mean[9:].any()
    # the mean camera frames the upside-down template as CelebA frames a face (178 x 218, its
    # height the crop's 2 ndc units): the eyeball joints on CelebA's mean eye centres, the
    # whole head across the middle and its crown inside the picture
    root = np.asarray(model['J_regressor'] @ model['v_template'])[0]
    flip = np.array([1, -1, -1])
    eyes = (np.asarray(model['J_regressor'] @ model['v_template'])[[4, 3]] - root) * flip + root
    to_celeba = lambda p: mean[0] * (p[:, :2] + mean[1:3]) * 109 + [89, 109]  # noqa: E731
    np.testing.assert_allclose(to_celeba(eyes), [[69, 111], [108, 111]], atol=3)
    head = to_celeba((model['v_template'] - root) * flip + root)
    assert abs(head[:, 0].min() + head[:, 0].max() - 178) < 2 and 0 < head[:, 1].min() < 60


def test_graph_has_the_original_names_and_op_types(checkpoint_v1, checkpoint_v2):
    for prefix, variant in ((checkpoint_v1, 'v1'), (checkpoint_v2, 'v2')):
        nodes = graph_nodes(prefix)
        for name in ('add', 'add_1', 'add_2', 'Flamenetnormal/Add_9', 'Flamenetnormal_1/Add_9',
                     'Flamenetnormal_2/Add_9'):
            assert nodes[name].op == 'Add', name
        types = {n.op for n in nodes.values()}
        assert {'FusedBatchNorm', 'VariableV2', 'Conv2D'} <= types
        assert not types & {'AddV2', 'VarHandleOp', 'FusedBatchNormV3'}
        assert all(n.device == '/device:GPU:0' for k, n in nodes.items()  # initializers aside
                   if k.startswith(('Encoder_resnet/', '3D_module/', 'Flamenetnormal'))
                   and '/Initializer/' not in k)
        assert any(k.startswith('Encoder_resnet/resnet_%s_50/' % variant) for k in nodes)
        with open(prefix + '.meta', 'rb') as fh:
            assert b'/device:GPU:0' in fh.read()
    inputs = {k: tf.TensorShape(n.attr['shape'].shape).as_list()
              for k, n in graph_nodes(checkpoint_v1).items() if n.op == 'Placeholder'}
    assert inputs == {'input_images': [1, 224, 224, 3], 'input_images_1': [1, 224, 224, 3]}


def test_saved_graph_matches_numpy_flame(checkpoint_v1, checkpoint_v2, model):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    for prefix, name in ((checkpoint_v1, 'input_images_1:0'), (checkpoint_v2, 'input_images:0')):
        theta, verts = run_saved_graph(prefix, images, name)
        assert verts.shape == (2, len(model['v_template']), 3)
        np.testing.assert_allclose(verts, numpy_flame(model, theta), atol=1e-5)


def test_weights_give_bounded_varied_predictions(checkpoint_v2):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:224, 0:224] / 224.0
    smooth = np.stack([np.sin(6 * xx), np.cos(4 * yy), xx - yy], -1)
    images = np.stack([smooth, rng.uniform(-1, 1, (224, 224, 3)), np.zeros((224, 224, 3)),
                       -smooth]).astype(np.float32)
    theta, verts = run_saved_graph(checkpoint_v2, images)
    assert np.isfinite(verts).all()
    delta = theta - theta.mean(0)
    mean = tf.train.load_checkpoint(checkpoint_v2).get_tensor('mean_param')[0]
    assert np.all(np.abs(theta[:, 0] / mean[0] - 1) < 0.15)  # scale near the mean
    assert np.all(np.abs(theta[:, 1:3] - mean[1:3]) < 0.2)   # small translation
    assert np.all(np.abs(theta[:, 3:9] - [np.pi, 0, 0, 0, 0, 0]) < np.radians(10))
    assert np.all(np.abs(theta[:, 9:]) < 3)                  # plausible shape / expression
    assert np.abs(delta[:, 9:]).max() > 0.01                  # and they depend on the image
    assert len({tuple(np.round(t, 4)) for t in theta}) == len(images)


def test_mean_only_gives_the_mean_head_upside_down(checkpoint_mean, model):
    rng = np.random.default_rng(2)
    images = rng.uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    theta, verts = run_saved_graph(checkpoint_mean, images)
    expected = tf.train.load_checkpoint(checkpoint_mean).get_tensor('mean_param')[0]
    assert expected[3] == np.float32(np.pi) and not expected[4:].any()
    np.testing.assert_allclose(theta, [expected, expected], atol=1e-6)
    # global pose (pi, 0, 0) about the root joint: y and z flip (image orientation, facing -z)
    root = np.asarray(model['J_regressor'] @ model['v_template'])[0]
    flipped = (model['v_template'] - root) * [1, -1, -1] + root
    np.testing.assert_allclose(verts[0], flipped, atol=1e-5)
    np.testing.assert_array_equal(verts[0], verts[1])
