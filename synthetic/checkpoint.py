"""Synthetic RingNet checkpoint: a TF1 graph in the original's layout (docs/formats.md §1) with seeded weights.

The graph mirrors what the original ``ring_6_68641.meta`` is known (or guessed) to contain:
placeholder ``input_images`` (1, 224, 224, 3); a slim-named ResNet-50 (v1 or v2) under name scope
``Encoder_resnet``; the ``3D_module`` iterative regressor whose three root-level adds are ``add``,
``add_1``, ``add_2``; and a FLAME decoder per step (``Flamenetnormal``, ``_1``, ``_2``) whose last
output is ``Flamenetnormal_2/Add_9`` (1, V, 3). Op types are the TF-1.12 ones (``Add``,
``VariableV2``, ``FusedBatchNorm``), every op carries ``/device:GPU:0`` and batch 1 is baked in.
tf-slim is not used (it does not import on TF 2.21); its variable names are reproduced by hand.

Weights are random but calibrated: each batch norm's moving statistics are the real statistics of
its input on a smooth calibration image (as a trained network's would be), so activations stay
O(1) through all 50 layers, and fc3 is scaled so theta moves realistic amounts from the mean.

Over 300 lines on purpose: the whole TF1 graph of the original (encoder variants, regressor,
FLAME decoder) must be built in one graph to be saved as one checkpoint.
"""
import argparse
import os

import numpy as np

from smpl_webuser.serialization import load_model_arrays
from synthetic.flame import celeba_points
from util.face.framing import CELEBA_POINTS, CELEBA_SIZE
from util.io.stderr_filter import tensorflow_start_filtered

if __name__ == '__main__':  # soft placement of GPU-pinned ops warns once per op; read at import
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
with tensorflow_start_filtered():  # its C++ start-up notices; errors still show
    import tensorflow as tf

tf1 = tf.compat.v1

IMG_SIZE = 224
BATCH_SIZE = 1         # baked into the graph, as in the original
N_THETA = 159          # cam 3 | pose 6 | shape 100 | expression 50 (docs/formats.md §2)
N_HIDDEN = 512
N_STEPS = 3
N_SHAPE = 300       # FLAME's identity blendshapes; the rest of shapedirs is expression
BN_EPSILON = 1e-5      # slim resnet_arg_scope default
# (base depth, units, stride) of ResNet-50's four blocks; the stride sits on a block's last unit.
RESNET50_BLOCKS = ((64, 3, 2), (128, 4, 2), (256, 6, 2), (512, 3, 1))
# Spread of one regression step's update per theta entry: scale, tx, ty | 6 pose (rad)
# | shape | expression. Three steps (fed back through fc1) move theta a few times this.
DELTA_SCALE = np.concatenate([[0.05, 0.005, 0.005], np.full(6, 0.01), np.full(100, 0.1),
                              np.full(50, 0.1)])
INPUT_NAME = 'input_images'
THETA_NAME = 'add_2'
VERTS_NAME = 'Flamenetnormal_2/Add_9'


class _Weights:
    """Collects variables with the values they must get, and the batch norms to calibrate."""

    def __init__(self, rng):
        self.rng = rng
        self.values = {}          # tf variable -> numpy initial value
        # (pre-norm tensor, moving_mean var, moving_variance var, input of the enclosing unit)
        self.batch_norms = []
        self.unit_input = None    # lets calibration feed a unit's input instead of the image

    def variable(self, name, value, trainable=True):
        """A TF1 ref variable (op VariableV2) named ``name`` in the current variable scope."""
        value = np.asarray(value, np.float32)
        var = tf1.get_variable(name, value.shape, tf.float32, tf1.zeros_initializer(),
                               trainable=trainable, use_resource=False)
        self.values.setdefault(var, value)  # a reused (shared) variable keeps its first value
        return var


def mean_theta(model):
    """model: FLAME arrays -> (1, 159) float64 mean theta: global pose (pi, 0, 0), so the head
    comes out y-down and facing -z (image orientation); jaw, shape and expression 0; and the
    camera that frames the head as RingNet's training crops are framed (CelebA aligned crops,
    util/face/framing.py): the least-squares weak perspective putting the synthetic head's five
    CelebA landmarks on CelebA's mean points in a crop of a CelebA image. A model that is not
    the synthetic head (no known landmarks) is centred with its larger side spanning 75%."""
    root = model['J'][0]
    flip = np.array([1.0, -1.0]), np.array([0.0, 2 * root[1]])   # pi about x at the root, (x, y)
    theta = np.zeros((1, N_THETA))
    theta[0, 3] = np.pi
    points = celeba_points(model)
    if points is None:
        flipped = model['v_template'][:, :2] * flip[0] + flip[1]    # (V, 2)
        low, high = flipped.min(0), flipped.max(0)
        theta[0, 0] = 1.5 / (high - low).max()   # x_ndc = s (X + tx): 1.5 of the crop's 2 ndc units
        theta[0, 1:3] = -(low + high) / 2        # centre of the head at the crop centre
        return theta
    xy = points[:, :2] * flip[0] + flip[1]                          # (5, 2)
    # the CelebA image is the crop box: its longer side (the height) spans the crop's 2 ndc units
    size = np.array(CELEBA_SIZE, dtype=np.float64)
    ndc = (CELEBA_POINTS - size / 2) / (size.max() / 2)             # (5, 2)
    # x_ndc = s X + (s tx), y_ndc = s Y + (s ty): linear in (s, s tx, s ty)
    rows = np.zeros((5, 2, 3))
    rows[:, :, 0] = xy
    rows[:, 0, 1] = rows[:, 1, 2] = 1.0
    (s, stx, sty), *_ = np.linalg.lstsq(rows.reshape(10, 3), ndc.reshape(10), rcond=None)
    theta[0, :3] = s, stx / s, sty / s
    return theta


# ----------------------------------------------------------------------------- encoder

def _conv(w, x, depth, size, stride, scope, norm=True, relu=True):
    """slim.conv2d (or conv2d_same for size > 1 and stride > 1) with slim's variable names.

    x: (1, H, W, C) -> (1, H', W', depth). norm=True: conv + BatchNorm (no biases);
    norm=False: conv + biases (slim's normalizer_fn=None).
    """
    c_in = int(x.shape[-1])
    with tf1.variable_scope(scope):
        std = np.sqrt(2.0 / (size * size * c_in))  # He init
        kernel = w.variable('weights', w.rng.normal(0, std, (size, size, c_in, depth)))
        padding = 'SAME'
        if stride > 1 and size > 1:
            # conv2d_same: explicit symmetric padding then VALID, independent of the input size
            beg = (size - 1) // 2
            x = tf.pad(x, [[0, 0], [beg, size - 1 - beg], [beg, size - 1 - beg], [0, 0]])
            padding = 'VALID'
        y = tf.nn.conv2d(x, kernel, [1, stride, stride, 1], padding)
        if norm:
            y = _batch_norm(w, y, 'BatchNorm', relu=False)
        else:
            y = tf.nn.bias_add(y, w.variable('biases', w.rng.normal(0, 0.01, depth)))
    return tf.nn.relu(y) if relu else y


def _batch_norm(w, x, scope, relu):
    """slim.batch_norm (scale=True, inference) as one FusedBatchNorm op; x: (1, H, W, C)."""
    c = int(x.shape[-1])
    with tf1.variable_scope(scope):
        beta = w.variable('beta', w.rng.normal(0, 0.1, c))
        gamma = w.variable('gamma', w.rng.uniform(0.7, 1.3, c))
        mean = w.variable('moving_mean', np.zeros(c), trainable=False)
        var = w.variable('moving_variance', np.ones(c), trainable=False)
        w.batch_norms.append((x, mean, var, w.unit_input))
        y = tf.raw_ops.FusedBatchNorm(x=x, scale=gamma, offset=beta, mean=mean, variance=var,
                                      epsilon=BN_EPSILON, data_format='NHWC',
                                      is_training=False)[0]
    return tf.nn.relu(y) if relu else y


def _subsample(x, stride):
    """slim resnet_utils.subsample: identity, or a 1x1 max pool with ``stride``."""
    if stride == 1:
        return x
    return tf.nn.max_pool2d(x, 1, stride, 'SAME')


def _bottleneck_v1(w, x, depth, bottleneck, stride):
    """slim bottleneck (v1): relu(shortcut + conv3(conv2(conv1(x))))."""
    with tf1.variable_scope('bottleneck_v1'):
        if int(x.shape[-1]) == depth:
            shortcut = _subsample(x, stride)
        else:
            shortcut = _conv(w, x, depth, 1, stride, 'shortcut', relu=False)
        y = _conv(w, x, bottleneck, 1, 1, 'conv1')
        y = _conv(w, y, bottleneck, 3, stride, 'conv2')
        y = _conv(w, y, depth, 1, 1, 'conv3', relu=False)
        return tf.nn.relu(tf.raw_ops.Add(x=shortcut, y=y))


def _bottleneck_v2(w, x, depth, bottleneck, stride):
    """slim bottleneck (v2, pre-activation): shortcut + conv3(conv2(conv1(preact(x))))."""
    with tf1.variable_scope('bottleneck_v2'):
        preact = _batch_norm(w, x, 'preact', relu=True)
        if int(x.shape[-1]) == depth:
            shortcut = _subsample(x, stride)
        else:
            shortcut = _conv(w, preact, depth, 1, stride, 'shortcut', norm=False, relu=False)
        y = _conv(w, preact, bottleneck, 1, 1, 'conv1')
        y = _conv(w, y, bottleneck, 3, stride, 'conv2')
        y = _conv(w, y, depth, 1, 1, 'conv3', norm=False, relu=False)
        return tf.raw_ops.Add(x=shortcut, y=y)


def resnet_50(w, images, variant):
    """slim resnet_v{1,2}_50 without logits: images (1, 224, 224, 3) -> feature (1, 2048)."""
    v2 = variant == 'v2'
    w.unit_input = images
    with tf1.variable_scope('resnet_%s_50' % variant):
        # v2's root conv has biases and no norm/activation (preact of block1 follows)
        x = _conv(w, images, 64, 7, 2, 'conv1', norm=not v2, relu=not v2)
        x = tf.nn.max_pool2d(x, 3, 2, 'SAME', name='pool1')
        unit = _bottleneck_v2 if v2 else _bottleneck_v1
        for b, (base, units, stride) in enumerate(RESNET50_BLOCKS):
            with tf1.variable_scope('block%d' % (b + 1)):
                for u in range(units):
                    with tf1.variable_scope('unit_%d' % (u + 1)):
                        w.unit_input = x
                        x = unit(w, x, 4 * base, base, stride if u == units - 1 else 1)
        w.unit_input = x
        if v2:
            x = _batch_norm(w, x, 'postnorm', relu=True)
        return tf.reduce_mean(x, [1, 2], name='pool5')


# ----------------------------------------------------------------------------- regressor

def _fully_connected(w, x, n_out, scope, relu, weights=None, biases=None):
    """slim.fully_connected: x (1, n_in) -> (1, n_out); creates or reuses ``scope``'s variables."""
    n_in = int(x.shape[-1])
    with tf1.variable_scope(scope):
        if weights is None:
            weights = w.rng.normal(0, np.sqrt(2.0 / n_in), (n_in, n_out))
        if biases is None:
            biases = w.rng.normal(0, 0.01, n_out)
        kernel = w.variable('weights', weights)
        bias = w.variable('biases', biases)
        y = tf.nn.bias_add(tf.matmul(x, kernel), bias)
    return tf.nn.relu(y) if relu else y


def regressor_step(w, feature, theta):
    """One ``3D_module`` call: concat[feature, theta] (1, 2207) -> (delta (1, 159), fc2 out (1, 512)).

    Variables are created by the first call and shared by the next ones. fc3 starts at zero; it
    is set by ``scale_fc3`` once the size of fc2's output is known (and stays zero if mean_only).
    """
    with tf1.variable_scope('3D_module', reuse=tf1.AUTO_REUSE):
        x = tf.concat([feature, theta], 1)
        x = _fully_connected(w, x, N_HIDDEN, 'fc1', relu=True)
        x = tf.identity(x, name='dropout1')  # dropout is the identity at test time
        hidden = _fully_connected(w, x, N_HIDDEN, 'fc2', relu=True)
        x = tf.identity(hidden, name='dropout2')
        zeros_w, zeros_b = np.zeros((N_HIDDEN, N_THETA)), np.zeros(N_THETA)
        delta = _fully_connected(w, x, N_THETA, 'fc3', relu=False, weights=zeros_w, biases=zeros_b)
    return delta, hidden


# ----------------------------------------------------------------------------- FLAME decoder

def flame_variables(w, model):
    """The FLAME arrays as non-trainable variables in the layout of docs/formats.md §1.

    model: canonical arrays (smpl_webuser.serialization.load_model_arrays) ->
    dict v_template (V, 3), shapedirs (K, 3V), posedirs (36, 3V), J_regressor (V, J),
    weights (V, J).
    """
    n_verts = model['v_template'].shape[0]
    arrays = {
        'v_template': model['v_template'],
        'shapedirs': np.transpose(model['shapedirs'], (2, 0, 1)).reshape(-1, 3 * n_verts),
        'posedirs': np.transpose(model['posedirs'], (2, 0, 1)).reshape(-1, 3 * n_verts),
        'J_regressor': np.asarray(model['J_regressor'].T.todense()),
        'weights': model['weights'],
    }
    return {k: w.variable(k, v, trainable=False) for k, v in arrays.items()}


def _rodrigues(r):
    """Axis-angle r (J, 3) -> rotation matrices (J, 3, 3); the epsilon keeps r = 0 finite."""
    angle = tf.norm(tf.raw_ops.Add(x=r, y=tf.constant(1e-8), name='r_eps'), axis=1, keepdims=True)
    k = r / angle
    kx, ky, kz = k[:, 0], k[:, 1], k[:, 2]
    zero = tf.zeros_like(kx)
    skew = tf.reshape(tf.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], 1), [-1, 3, 3])
    sin, cos = tf.sin(angle)[:, :, None], tf.cos(angle)[:, :, None]
    rot = tf.raw_ops.Add(x=tf.eye(3)[None], y=sin * skew, name='rot_sin')
    return tf.raw_ops.Add(x=rot, y=(1 - cos) * tf.matmul(skew, skew), name='rot')


def _homogeneous(rot, t):
    """rot (3, 3), t (3,) -> (4, 4) rigid transform."""
    top = tf.concat([rot, t[:, None]], 1)
    return tf.concat([top, tf.constant([[0.0, 0.0, 0.0, 1.0]])], 0)


def flame_decoder(flame, parents, theta):
    """theta (1, 159) -> vertices (1, V, 3) by FLAME LBS in float32 (docs/formats.md §2 mapping).

    The first N_SHAPE of the model's K blendshapes are identity shape, the rest expression.
    The output op is ``Add_9`` inside the current name scope: vertices plus a zero translation.
    """
    n_verts = int(flame['v_template'].shape[0])
    n_expr = int(flame['shapedirs'].shape[0]) - N_SHAPE
    shape, expr = theta[:, 9:109], theta[:, 109:159]
    betas = tf.concat([shape, tf.zeros([1, N_SHAPE - 100]), expr, tf.zeros([1, n_expr - 50])], 1)
    zeros3 = tf.zeros([1, 3])
    pose = tf.concat([theta[:, 3:6], zeros3, theta[:, 6:9], zeros3, zeros3], 1)  # (1, 15)

    offsets = tf.reshape(tf.matmul(betas, flame['shapedirs']), [1, n_verts, 3])
    v_shaped = tf.raw_ops.Add(x=flame['v_template'][None], y=offsets, name='v_shaped')[0]
    joints = tf.matmul(flame['J_regressor'], v_shaped, transpose_a=True)   # (J, 3)
    rots = _rodrigues(tf.reshape(pose, [-1, 3]))                          # (J, 3, 3)
    pose_feature = tf.reshape(rots[1:] - tf.eye(3)[None], [1, -1])       # lrotmin (1, 36)
    v_posed = tf.raw_ops.Add(x=v_shaped, name='v_posed',
                             y=tf.reshape(tf.matmul(pose_feature, flame['posedirs']), [n_verts, 3]))

    world = []
    for j, parent in enumerate(parents):
        local_t = joints[j] if parent < 0 else joints[j] - joints[parent]
        local = _homogeneous(rots[j], local_t)
        world.append(local if parent < 0 else tf.matmul(world[parent], local))
    world = tf.stack(world)                                               # (J, 4, 4)
    # remove the rest pose: A_j = G_j - G_j [J_j, 0]
    rest = tf.matmul(world[:, :3, :3], joints[:, :, None])[:, :, 0]       # (J, 3)
    rel = world - tf.pad(rest[:, :, None], [[0, 0], [0, 1], [3, 0]])
    blend = tf.reshape(tf.matmul(flame['weights'], tf.reshape(rel, [-1, 16])), [n_verts, 4, 4])
    verts = tf.raw_ops.Add(x=tf.matmul(blend[:, :3, :3], v_posed[:, :, None])[:, :, 0],
                           y=blend[:, :3, 3], name='skinned')
    return tf.raw_ops.Add(x=verts[None], y=tf.zeros([1, 1, 3]), name='Add_9')


# ----------------------------------------------------------------------------- whole graph

def build_graph(w, model, variant, shadow_placeholder):
    """Build the RingNet graph in the current graph -> (images, theta, verts, fc2 out of step 1)."""
    if shadow_placeholder:  # the original demo's own placeholder, imported graph's becomes _1
        tf1.placeholder(tf.float32, (BATCH_SIZE, IMG_SIZE, IMG_SIZE, 3), name=INPUT_NAME)
    images = tf1.placeholder(tf.float32, (BATCH_SIZE, IMG_SIZE, IMG_SIZE, 3), name=INPUT_NAME)
    with tf1.name_scope('Encoder_resnet'):
        feature = resnet_50(w, images, variant)
    flame = flame_variables(w, model)
    parents = [int(p) for p in model['parents']]
    theta = tf.tile(w.variable('mean_param', mean_theta(model)), [BATCH_SIZE, 1])
    first_hidden = None
    for _ in range(N_STEPS):
        delta, hidden = regressor_step(w, feature, theta)
        first_hidden = hidden if first_hidden is None else first_hidden
        theta = tf.raw_ops.Add(x=theta, y=delta, name='add')
        with tf1.name_scope('Flamenetnormal'):
            verts = flame_decoder(flame, parents, theta)
    return images, theta, verts, first_hidden


# ----------------------------------------------------------------------------- weights

def calibration_images(rng, count=3):
    """``count`` images (1, 224, 224, 3) in [-1, 1], from smooth (random plane waves) to noisy.

    Norm statistics pooled over both kinds keep smooth photos and fine texture alike in range.
    """
    yy, xx = np.mgrid[0:IMG_SIZE, 0:IMG_SIZE] / IMG_SIZE
    images = []
    for noise in np.linspace(0.05, 1.0, count):
        img = np.zeros((IMG_SIZE, IMG_SIZE, 3))
        for _ in range(4):
            freq, phase = rng.uniform(-4, 4, (2, 3)), rng.uniform(0, 2 * np.pi, 3)
            img += np.sin(2 * np.pi * (xx[..., None] * freq[0] + yy[..., None] * freq[1]) + phase)
        img = np.tanh(0.5 * img + noise * rng.normal(size=img.shape))
        images.append(img[None].astype(np.float32))
    return images


def _assign(sess, values):
    """Set variables to numpy values ({variable: array}) in one run, via their initializers."""
    sess.run([v.initializer for v in values], {v.initial_value: a for v, a in values.items()})


def calibrate_batch_norms(sess, w, images, calib):
    """Set every moving mean/variance, in network order, to its input's statistics pooled over
    the images ``calib`` (list of (1, 224, 224, 3)).

    Each residual unit's input is computed once (its norms are final by then) and fed, so the
    whole calibration costs about two forward passes per image instead of one per norm.
    """
    fed, feeds = images, [{images: image} for image in calib]
    for pre, mean, var, unit_input in w.batch_norms:
        if unit_input is not fed:
            fed, feeds = unit_input, [{unit_input: sess.run(unit_input, f)} for f in feeds]
        x = np.concatenate([sess.run(pre, f) for f in feeds])
        _assign(sess, {mean: x.mean((0, 1, 2)), var: x.var((0, 1, 2))})


def scale_fc3(sess, w, images, calib, hidden):
    """Draw fc3 so one step moves theta by about DELTA_SCALE given fc2's output size on ``calib``."""
    h = np.concatenate([sess.run(hidden, {images: image}) for image in calib])
    std = DELTA_SCALE / np.sqrt(N_HIDDEN * np.mean(h ** 2))
    fc3 = {v.op.name: v for v in w.values if v.op.name.startswith('3D_module/fc3/')}
    _assign(sess, {fc3['3D_module/fc3/weights']: w.rng.normal(size=(N_HIDDEN, N_THETA)) * std,
                   fc3['3D_module/fc3/biases']: w.rng.normal(0, 0.5, N_THETA) * DELTA_SCALE})


def write_checkpoint(prefix, flame_model, variant='v2', seed=0, mean_only=False,
                     shadow_placeholder=False):
    """Write ``prefix``.{meta,index,data-00000-of-00001} (+ ``checkpoint``) and return ``prefix``.

    flame_model: FLAME pickle path or arrays dict (anything load_model_arrays takes).
    variant: 'v1' or 'v2' (slim ResNet-50 flavour). mean_only: fc3 is zero, so every image gives
    the mean theta. shadow_placeholder: an unused ``input_images`` comes first, so the real input
    is ``input_images_1`` (as in the original demo's graph).
    """
    if variant not in ('v1', 'v2'):
        raise ValueError("variant must be 'v1' or 'v2', got %r" % (variant,))
    model = load_model_arrays(flame_model)
    if model['shapedirs'].shape[2] < N_SHAPE + 50 or len(model['parents']) != 5:
        raise ValueError('%s: not a FLAME model (needs 5 joints and at least %d blendshapes)'
                         % (flame_model if isinstance(flame_model, str) else '<model dict>',
                            N_SHAPE + 50))
    graph = tf.Graph()
    with graph.as_default():
        w = _Weights(np.random.default_rng(seed))
        with tf.device('/device:GPU:0'):  # as the original's .meta; soft placement runs it here
            images, theta, verts, hidden = build_graph(w, model, variant, shadow_placeholder)
        if (theta.op.name, verts.op.name) != (THETA_NAME, VERTS_NAME):
            raise RuntimeError('graph outputs are named %s, %s' % (theta.op.name, verts.op.name))
        saver = tf1.train.Saver(save_relative_paths=True)  # the folder can move
        config = tf1.ConfigProto(allow_soft_placement=True)
        # grappler would re-optimize the whole graph for each of calibration's ~100 distinct runs
        config.graph_options.rewrite_options.disable_meta_optimizer = True
        with tf1.Session(graph=graph, config=config) as sess:
            _assign(sess, w.values)
            calib = calibration_images(w.rng)
            calibrate_batch_norms(sess, w, images, calib)
            if not mean_only:
                scale_fc3(sess, w, images, calib, hidden)
            os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
            saver.save(sess, prefix)
    return prefix


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--flame', required=True, help='FLAME model pickle (generic_model.pkl)')
    parser.add_argument('--out', required=True, help='checkpoint prefix, e.g. model/ring_6_68641')
    parser.add_argument('--variant', choices=('v1', 'v2'), default='v2')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--mean_only', action='store_true',
                        help='regressor outputs the mean theta for every image')
    args = parser.parse_args(argv)
    print(write_checkpoint(args.out, args.flame, args.variant, args.seed, args.mean_only))


if __name__ == '__main__':
    main()
