"""run_RingNet.py: the checkpoint runs on TF 2 / CPU and equals the original demo's way of running it."""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from config import default_config
from util.model.tf_backend import RingNet_inference, RingNetInputError, RingNetLoadError

tf1 = tf.compat.v1
FILES = ('.meta', '.index', '.data-00000-of-00001')


@pytest.fixture(scope='module')
def net_v2(checkpoint_v2):
    return RingNet_inference(default_config(load_path=checkpoint_v2))


@pytest.fixture(scope='module')
def images():
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (3, 224, 224, 3)).astype(np.float32)


def original_demo_run(prefix, images):
    """The original's recipe: its own ``input_images`` placeholder first, so the imported input
    is ``input_images_1``; import_meta_graph with devices kept; restore; fetch by name."""
    graph = tf.Graph()
    with graph.as_default():
        tf1.placeholder(tf.float32, (1, 224, 224, 3), name='input_images')
        saver = tf1.train.import_meta_graph(prefix + '.meta')
        with tf1.Session(config=tf1.ConfigProto(allow_soft_placement=True)) as sess:
            saver.restore(sess, prefix)
            outs = [sess.run(['add_2:0', 'Flamenetnormal_2/Add_9:0'],
                             {'input_images_1:0': im[None]}) for im in images]
    return np.concatenate([o[1] for o in outs]), np.concatenate([o[0] for o in outs])


def one_line_error(exc_info, *fragments):
    message = str(exc_info.value)
    assert '\n' not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def linked_copy(prefix, folder, skip=()):
    """Checkpoint files of ``prefix`` symlinked into ``folder`` (except suffixes in ``skip``)."""
    new = os.path.join(str(folder), 'ring_6_68641')
    for suffix in FILES:
        if suffix not in skip:
            os.symlink(prefix + suffix, new + suffix)
    return new


def test_both_variants_equal_the_original_demo_recipe(checkpoint_v1, checkpoint_v2, net_v2,
                                                     images):
    for net, prefix in ((RingNet_inference(default_config(load_path=checkpoint_v1)),
                         checkpoint_v1), (net_v2, checkpoint_v2)):
        verts, theta = net.predict(images, get_parameters=True)
        want_verts, want_theta = original_demo_run(prefix, images)
        assert verts.dtype == np.float32 and theta.dtype == np.float32
        assert theta.shape == (3, 159) and verts.shape == want_verts.shape
        np.testing.assert_allclose(theta, want_theta, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(verts, want_verts, atol=1e-5)
        assert np.abs(np.diff(theta, axis=0)).max() > 1e-3  # different images, different output


def test_gpu_device_strings_are_in_the_meta_and_load_here(checkpoint_v1):
    with open(checkpoint_v1 + '.meta', 'rb') as fh:
        assert b'/device:GPU:' in fh.read()
    net = RingNet_inference(default_config(load_path=checkpoint_v1))
    assert net.images.op.name == 'input_images_1'
    assert all(op.device == '' for op in net.sess.graph.get_operations())  # placement is free


def test_backend_interface_is_plain_ints(net_v2):
    """util.model.backend: sizes are Python ints, not TensorFlow shapes."""
    sizes = (net_v2.image_size, net_v2.n_theta, net_v2.n_vertices)
    assert sizes == (224, 159, 5023) and all(type(n) is int for n in sizes)


def test_many_images_import_once_and_equal_single_calls(net_v2):
    rng = np.random.default_rng(1)
    batch = rng.uniform(-1, 1, (32, 224, 224, 3))  # float64 input is accepted
    n_ops = len(net_v2.sess.graph.get_operations())
    verts, theta = net_v2.predict(batch, get_parameters=True)
    singles = [net_v2.predict(im[None], get_parameters=True) for im in batch]
    np.testing.assert_array_equal(verts, np.concatenate([s[0] for s in singles]))
    np.testing.assert_array_equal(theta, np.concatenate([s[1] for s in singles]))
    assert len(net_v2.sess.graph.get_operations()) == n_ops  # nothing added per call
    assert net_v2.predict(batch[:0]).shape == (0,) + verts.shape[1:]


def test_runs_in_a_given_session_and_from_a_folder(checkpoint_v2, net_v2, images):
    want = net_v2.predict(images[:1])
    with tf1.Session(graph=tf.Graph()) as sess:
        net = RingNet_inference(default_config(load_path=checkpoint_v2), sess=sess)
        assert net.sess is sess
        np.testing.assert_array_equal(net.predict(images[:1]), want)
    folder = RingNet_inference(default_config(load_path=os.path.dirname(checkpoint_v2)))
    np.testing.assert_array_equal(folder.predict(images[:1]), want)


def test_folder_with_a_stale_or_no_checkpoint_index(checkpoint_v2, net_v2, images, tmp_path):
    """A copied release folder: its 'checkpoint' file names another machine's path, or is gone."""
    linked_copy(checkpoint_v2, tmp_path)
    want = net_v2.predict(images[:1])
    np.testing.assert_array_equal(
        RingNet_inference(default_config(load_path=str(tmp_path))).predict(images[:1]), want)
    (tmp_path / 'checkpoint').write_text('model_checkpoint_path: "/elsewhere/ring_6_68641"\n')
    np.testing.assert_array_equal(
        RingNet_inference(default_config(load_path=str(tmp_path))).predict(images[:1]), want)


@pytest.mark.parametrize('suffix', FILES)
def test_missing_file_is_named(checkpoint_v2, tmp_path, suffix):
    prefix = linked_copy(checkpoint_v2, tmp_path, skip=(suffix,))
    with pytest.raises(RingNetLoadError) as exc:
        RingNet_inference(default_config(load_path=prefix))
    one_line_error(exc, prefix + suffix, 'not found', 'model/')


def test_training_ops_and_their_colocations_do_not_break_loading(checkpoint_v2, net_v2, images,
                                                          tmp_path):
    prefix = linked_copy(checkpoint_v2, tmp_path, skip=('.meta',))
    meta = tf1.MetaGraphDef()
    with open(checkpoint_v2 + '.meta', 'rb') as fh:
        meta.ParseFromString(fh.read())
    meta.graph_def.node.add(name='train/ApplyMagic', op='Tf112OnlyTrainingOp', input=['add_2'])
    # an output op colocated with a saver op (left out of the imported sub-graph)
    output = next(node for node in meta.graph_def.node if node.name == 'add_2')
    output.attr['_class'].list.s.append(b'loc:@save/Const')
    with open(prefix + '.meta', 'wb') as fh:
        fh.write(meta.SerializeToString())
    with tf.Graph().as_default(), pytest.raises(Exception, match='Tf112OnlyTrainingOp'):
        tf1.train.import_meta_graph(prefix + '.meta')  # the original's way fails on it
    net = RingNet_inference(default_config(load_path=prefix))
    np.testing.assert_array_equal(net.predict(images[:1]), net_v2.predict(images[:1]))


def test_truncated_data_and_index_are_named(checkpoint_v2, tmp_path):
    data = '.data-00000-of-00001'
    for suffix in (data, '.index'):
        folder = tmp_path / suffix.strip('.')
        folder.mkdir()
        prefix = linked_copy(checkpoint_v2, folder, skip=(suffix,))
        with open(checkpoint_v2 + suffix, 'rb') as src, open(prefix + suffix, 'wb') as dst:
            dst.write(src.read(os.path.getsize(checkpoint_v2 + suffix) // 2))
        with pytest.raises(RingNetLoadError) as exc:
            RingNet_inference(default_config(load_path=prefix))
        assert 'File "' not in one_line_error(exc, prefix + suffix, 'corrupt')


def test_corrupt_meta_is_named(checkpoint_v2, tmp_path):
    prefix = linked_copy(checkpoint_v2, tmp_path, skip=('.meta',))
    with open(prefix + '.meta', 'wb') as fh:
        fh.write(b'\xff' * 64)
    with pytest.raises(RingNetLoadError) as exc:
        RingNet_inference(default_config(load_path=prefix))
    one_line_error(exc, prefix + '.meta', 'corrupt')


def save_tiny_model(prefix):
    """An unrelated TF1 checkpoint: y = x * w."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, (1, 4), name='x')
        w = tf1.get_variable('w', (4,), initializer=tf1.ones_initializer(), use_resource=False)
        tf.multiply(x, w, name='y')
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            tf1.train.Saver().save(sess, prefix)


def test_checkpoint_of_another_model(checkpoint_v2, tmp_path):
    other = str(tmp_path / 'other')
    save_tiny_model(other)
    with pytest.raises(RingNetLoadError) as exc:
        RingNet_inference(default_config(load_path=other))
    one_line_error(exc, other + '.meta', 'not a RingNet graph', 'add_2', 'Flamenetnormal_2/Add_9',
                   'it has e.g. ')
    # RingNet's graph with another model's weights: the missing variables are listed
    mixed = str(tmp_path / 'mixed')
    shutil.copy(checkpoint_v2 + '.meta', mixed + '.meta')
    for suffix in FILES[1:]:
        shutil.copy(other + suffix, mixed + suffix)
    with pytest.raises(RingNetLoadError) as exc:
        RingNet_inference(default_config(load_path=mixed))
    one_line_error(exc, mixed + '.index', 'lacks', '3D_module/fc1/weights', 'it has e.g. w')


def test_resource_variables_and_newer_op_types_load(tmp_path):
    """Re-saved by a newer TF 1.x: resource variables, AddV2; only the names are the original's."""
    prefix = str(tmp_path / 'ring_6_68641')
    rng = np.random.default_rng(5)
    w_value, v_value = rng.normal(size=(3, 159)), rng.normal(size=(1, 7, 3))
    graph = tf.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, (1, 224, 224, 3), name='input_images')
        w = tf1.get_variable('w', w_value.shape, initializer=tf1.constant_initializer(w_value),
                             use_resource=True)
        v = tf1.get_variable('v', v_value.shape, initializer=tf1.constant_initializer(v_value),
                             use_resource=True)
        theta = tf.raw_ops.AddV2(x=tf.reduce_mean(x, [1, 2]) @ w, y=tf.zeros((1, 159)),
                                 name='add_2')
        with tf1.name_scope('Flamenetnormal_2'):
            tf.raw_ops.AddV2(x=v * theta[:, :1, None], y=tf.zeros((1, 7, 3)), name='Add_9')
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            tf1.train.Saver().save(sess, prefix)
    net = RingNet_inference(default_config(load_path=prefix))
    image = rng.uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    verts, theta = net.predict(image, get_parameters=True)
    expected_theta = image.mean((1, 2)) @ w_value
    np.testing.assert_allclose(theta, expected_theta, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(verts, v_value * expected_theta[:, :1, None], rtol=1e-4, atol=1e-5)


def test_wrong_images_are_refused(net_v2, images):
    for bad, fragment in ((images[0], '(224, 224, 3)'),
                          (np.zeros((1, 100, 100, 3), np.float32), '(1, 100, 100, 3)'),
                          (np.zeros((1, 224, 224, 3), np.uint8), 'uint8'),
                          (np.full((1, 224, 224, 3), np.nan, np.float32), 'NaN')):
        with pytest.raises(RingNetInputError) as exc:
            net_v2.predict(bad)
        one_line_error(exc, fragment)
