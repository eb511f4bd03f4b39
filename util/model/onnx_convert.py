"""Convert the checkpoint's output sub-graph to ONNX and check it against TensorFlow
(docs/formats.md §13). Runs in a child process of its own (``python -m util.model.onnx_convert
LOAD_PATH OUT.onnx``, started by util.model.conversion_cache), so that TensorFlow's import and
memory never stay in the process that then runs the model. TensorFlow and tf2onnx are imported
here only.

Where the time and memory went (measured on the full-size graph, 120 MB of weights): tf2onnx
copies every constant once per optimizer pass (deep copies of the graph and its protos: 21 s,
8 GB), and freezing copies the weights into the graph first. So the weights never enter a
graph: each variable read and each large constant becomes a placeholder, the weightless graph
is converted, and the weights are put back as initializers; onnxruntime's hardware-independent
(basic) optimizations then fold what tf2onnx would have folded (the layout of the kernels).

The graph is split at theta: the encoder (image -> theta) is given a free batch dimension by
rewriting its batch-1 shape constants (a Tile of the mean theta, reshapes), and the FLAME
decoder (theta -> vertices), whose batch-1 shapes are spread through it, runs once per image
in an ONNX Scan. What is rewritten is only a guess about the graph: the result is checked
(batch N against N single runs) and refused when it differs, keeping a batch-1 model.
"""
import contextlib
import json
import logging
import os
import sys
import time

import numpy as np

from util.errors import one_line
from util.model.onnx_backend import THETA, VERTICES
from util.model.onnx_check import (BATCH_THETA_MAX, batch_errors, check_images, errors,
                                   predicted)
from util.model.tf_backend import THETA_OP, VERTS_OP, ancestors_subgraph

OPSET = 17
LIFT_MIN_ELEMENTS = 4096  # constants this large go around tf2onnx (weights, FLAME arrays)
DECODER_PREFIX = 'flame/'  # names inside the Scan body, apart from the encoder's
THETA_IN = 'ringnet_theta_in'  # the decoder's placeholder standing for theta


def _as_placeholder(node, dtype, shape):
    """Turn GraphDef ``node`` into a Placeholder of ``dtype`` (enum) and ``shape``, in place."""
    import tensorflow as tf
    node.op = 'Placeholder'
    node.ClearField('input')
    node.ClearField('attr')
    node.attr['dtype'].type = dtype
    node.attr['shape'].shape.CopyFrom(tf.TensorShape(shape).as_proto())


def weightless_graph(net):
    """(GraphDef of ``net``'s output sub-graph with every variable read a placeholder, {its
    name: value}): the weights read from the session, never copied into a graph."""
    graph_def = ancestors_subgraph(net.sess.graph.as_graph_def(), [THETA_OP, VERTS_OP], 'graph')
    nodes = {node.name: node for node in graph_def.node}
    reads = [node for node in graph_def.node if node.op in ('VariableV2', 'Variable') or (
        node.op == 'ReadVariableOp' and nodes[_producer(node.input[0])].op == 'VarHandleOp')]
    values = net.sess.run([node.name + ':0' for node in reads])
    for node, value in zip(reads, values):
        _as_placeholder(node, node.attr['dtype'].type, value.shape)
    # the resource handles are read by nothing now
    return ancestors_subgraph(graph_def, [THETA_OP, VERTS_OP], 'graph'), {
        node.name: value for node, value in zip(reads, values)}


def lift_constants(graph_def, min_elements=LIFT_MIN_ELEMENTS):
    """Large Const nodes -> Placeholders of their dtype and shape, in place -> {name: array}."""
    import tensorflow as tf
    lifted = {}
    for node in graph_def.node:
        if node.op != 'Const':
            continue
        dims = [d.size for d in node.attr['value'].tensor.tensor_shape.dim]
        if int(np.prod(dims)) < min_elements:
            continue
        lifted[node.name] = tf.make_ndarray(node.attr['value'].tensor)
        _as_placeholder(node, node.attr['dtype'].type, dims)
    return lifted


def _producer(name):
    """'op:1' / '^op' / 'op' -> 'op'."""
    return name.lstrip('^').split(':')[0]


def _renamed_input(name, old, new):
    """A node input ``name`` ('op', 'op:1' or '^op') with op ``old`` replaced by ``new``."""
    control = name.startswith('^')
    op, colon, port = name.lstrip('^').partition(':')
    return name if op != old else ('^' if control else '') + new + colon + port


def split_at_theta(graph_def, image_name, theta_shape):
    """(encoder GraphDef image -> THETA_OP, decoder GraphDef THETA_IN (``theta_shape``) ->
    VERTS_OP), or None when the vertices depend on the image other than through theta."""
    import tensorflow as tf
    encoder = ancestors_subgraph(graph_def, [THETA_OP], 'graph')
    nodes = {node.name: node for node in graph_def.node}
    keep, todo = set(), [VERTS_OP]
    while todo:
        name = todo.pop()
        if name in keep or name == THETA_OP:
            continue
        if name == image_name:
            return None
        keep.add(name)
        todo.extend(_producer(i) for i in nodes[name].input)
    decoder = tf.compat.v1.GraphDef()
    decoder.versions.CopyFrom(graph_def.versions)
    placeholder = decoder.node.add(name=THETA_IN, op='Placeholder')
    placeholder.attr['dtype'].type = nodes[THETA_OP].attr['T'].type
    placeholder.attr['shape'].shape.CopyFrom(tf.TensorShape(theta_shape).as_proto())
    for node in graph_def.node:
        if node.name in keep:
            copy = decoder.node.add()
            copy.CopyFrom(node)
            copy.input[:] = [_renamed_input(i, THETA_OP, THETA_IN) for i in copy.input]
    return encoder, decoder


def free_batch(graph_def, image_name, fixed):
    """Give the encoder GraphDef a free batch dimension, in place -> number of constants
    rewritten: the image placeholder's batch becomes unknown, a Reshape to (fixed, ...) without
    -1 reshapes to (-1, ...), and a Tile by (fixed, ...) tiles by (batch, ...)."""
    import tensorflow as tf
    nodes = {node.name: node for node in graph_def.node}
    image = nodes[image_name]
    image.attr['shape'].shape.dim[0].size = -1
    rewritten = 0
    batch = None
    for node in list(graph_def.node):
        if node.op not in ('Reshape', 'Tile') or len(node.input) < 2:
            continue
        const = nodes.get(_producer(node.input[1]))
        if const is None or const.op != 'Const':
            continue
        value = tf.make_ndarray(const.attr['value'].tensor)
        if value.ndim != 1 or not len(value) or value[0] != fixed:
            continue
        if node.op == 'Reshape':
            if -1 in value[1:]:
                continue
            new = graph_def.node.add(name=const.name + '/free_batch', op='Const')
            new.attr['dtype'].type = const.attr['dtype'].type
            new.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(
                np.concatenate([[-1], value[1:]]).astype(value.dtype)))
            node.input[1] = new.name
        else:
            batch = batch or _batch_size_op(graph_def, image_name, value.dtype)
            rest = graph_def.node.add(name=const.name + '/rest', op='Const')
            rest.attr['dtype'].type = const.attr['dtype'].type
            rest.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(value[1:]))
            axis = graph_def.node.add(name=const.name + '/axis', op='Const')
            axis.attr['dtype'].type = tf.int32.as_datatype_enum
            axis.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(np.int32(0)))
            concat = graph_def.node.add(name=const.name + '/free_batch', op='ConcatV2')
            concat.input.extend([batch, rest.name, axis.name])
            concat.attr['N'].i = 2
            concat.attr['T'].type = const.attr['dtype'].type
            concat.attr['Tidx'].type = tf.int32.as_datatype_enum
            node.input[1] = concat.name
        rewritten += 1
    return rewritten


def _batch_size_op(graph_def, image_name, dtype):
    """Add ops computing (1,) = the image batch's size in ``dtype`` -> their output's name."""
    import tensorflow as tf
    g = tf.Graph()
    with g.as_default():
        images = tf.compat.v1.placeholder(tf.float32, name=image_name)
        with tf.name_scope('ringnet_batch'):
            size = tf.cast(tf.shape(images, out_type=tf.int32)[:1], tf.as_dtype(dtype))
            tf.identity(size, name='size')
    graph_def.node.extend(n for n in g.as_graph_def().node if n.name != image_name)
    return 'ringnet_batch/size'


def to_onnx_graph(graph_def, inputs, outputs, weights):
    """tf2onnx on a weightless GraphDef -> onnx ModelProto with ``weights`` ({placeholder
    name: array}) as initializers. inputs / outputs: {tensor name: ONNX name}."""
    import tf2onnx
    from onnx import numpy_helper
    names = list(inputs) + ['%s:0' % name for name in weights]
    model, _ = tf2onnx.convert.from_graph_def(
        graph_def, input_names=names, output_names=list(outputs), opset=OPSET,
        tensors_to_rename=dict(inputs, **outputs))
    graph = model.graph
    kept = [i for i in graph.input if i.name not in {'%s:0' % n for n in weights}]
    del graph.input[:]
    graph.input.extend(kept)
    graph.initializer.extend(numpy_helper.from_array(np.ascontiguousarray(value), '%s:0' % name)
                             for name, value in weights.items())
    return model


def prefix_names(graph, prefix):
    """Prefix every node and value name of ``graph`` (onnx GraphProto), in place, so that it
    can sit inside another graph as a sub-graph without clashing."""
    rename = lambda name: prefix + name if name else name  # noqa: E731 - '' is 'no input'
    for node in graph.node:
        node.name = rename(node.name)
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    for field in (graph.input, graph.output, graph.value_info, graph.initializer):
        for value in field:
            value.name = rename(value.name)


def with_decoder_scan(encoder, decoder):
    """One model: ``encoder`` (image -> theta (N, T)) then ``decoder`` (theta (1, T) ->
    vertices (1, V, 3)) run on each row of theta by a Scan -> vertices (N, V, 3)."""
    from onnx import TensorProto, helper
    body = decoder.graph
    prefix_names(body, DECODER_PREFIX)
    theta_in, vertices = DECODER_PREFIX + THETA, DECODER_PREFIX + VERTICES
    row, row_out = DECODER_PREFIX + 'theta_row', DECODER_PREFIX + 'vertices_row'
    axis0 = DECODER_PREFIX + 'axis0'
    body.initializer.append(helper.make_tensor(axis0, TensorProto.INT64, [1], [0]))
    body.node.insert(0, helper.make_node('Unsqueeze', [row, axis0], [theta_in]))
    body.node.append(helper.make_node('Squeeze', [vertices, axis0], [row_out]))
    del body.input[:]
    body.input.append(helper.make_tensor_value_info(row, TensorProto.FLOAT, [None]))
    del body.output[:]
    body.output.append(helper.make_tensor_value_info(row_out, TensorProto.FLOAT, None))
    graph = encoder.graph
    graph.node.append(helper.make_node('Scan', [THETA], [VERTICES], num_scan_inputs=1,
                                       body=body, name='flame_per_image'))
    graph.output.append(helper.make_tensor_value_info(VERTICES, TensorProto.FLOAT,
                                                      [None, None, 3]))
    return encoder


def optimize_file(path):
    """Rewrite the ONNX file ``path`` after onnxruntime's basic (hardware-independent)
    optimizations: constant folding puts the weights in the layout tf2onnx would have."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = path + '.optimized'
    ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    os.replace(path + '.optimized', path)


def _quiet_loggers():
    """TF's deprecation notices for the TF1 freezing API and tf2onnx's progress lines are not
    for the user: the parent's one-line notice says what happens."""
    import tensorflow as tf
    for logger in (tf.get_logger(), logging.getLogger('tf2onnx')):
        logger.setLevel(logging.ERROR)


def _weights_of(graph_def, weights):
    """The entries of ``weights`` that are placeholders of ``graph_def``, taken out of it (once
    in the model they are not needed twice)."""
    return {node.name: weights.pop(node.name) for node in graph_def.node
            if node.op == 'Placeholder' and node.name in weights}


def convert(graph_def, weights, image, theta_shape, fixed_batch, path, free=True):
    """Convert a weightless_graph() to the ONNX file ``path`` (to be optimize_file()d),
    consuming ``weights`` -> dict: 'batch' ('free' or 'fixed'), 'rewritten' (batch constants).
    image: the placeholder's name; fixed_batch: its batch size (None: free already); free:
    give the encoder a free batch dimension. Inputs and outputs: the image batch, ``theta``
    (N, T), ``vertices`` (N, V, 3)."""
    from onnx import save_model
    feed = {image + ':0': image + ':0'}
    parts = split_at_theta(graph_def, image, theta_shape)
    rewritten = 0
    if parts is None:  # the decoder reads the image itself: one graph, its own batch
        model = to_onnx_graph(graph_def, feed, {THETA_OP + ':0': THETA,
                                                VERTS_OP + ':0': VERTICES},
                              _weights_of(graph_def, weights))
        free = fixed_batch is None
    else:
        encoder_def, decoder_def = parts
        if free and fixed_batch:
            rewritten = free_batch(encoder_def, image, fixed_batch)
        free = free or fixed_batch is None
        model = with_decoder_scan(
            to_onnx_graph(encoder_def, feed, {THETA_OP + ':0': THETA},
                          _weights_of(encoder_def, weights)),
            to_onnx_graph(decoder_def, {THETA_IN + ':0': THETA}, {VERTS_OP + ':0': VERTICES},
                          _weights_of(decoder_def, weights)))
    save_model(model, path)
    return {'batch': 'free' if free else 'fixed', 'rewritten': rewritten}


def _release_memory():
    """Hand memory freed by Python and protobuf back to the system (glibc keeps it otherwise),
    so that the next step's peak does not stack on the last one's."""
    import ctypes
    import gc
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).malloc_trim(0)


def _load(load_path, images):
    """The checkpoint on TensorFlow -> (its predictions on ``images``, weightless_graph(),
    {image, theta_shape, fixed_batch}); its session is closed."""
    from util.model.backend import tf_backend
    net = tf_backend(load_path)
    reference = predicted(net, images)
    graph_def, weights = weightless_graph(net)
    shape = dict(image=net.images.name.split(':')[0], theta_shape=net.theta.shape.as_list(),
                 fixed_batch=net.fixed_batch)
    net.close()
    weights.update(lift_constants(graph_def))
    _release_memory()
    return reference, graph_def, weights, shape


def convert_checked(load_path, path):
    """Load the checkpoint on TensorFlow, convert it to ``path`` and check -> the record:
    errors_vs_tf (each image alone), batch ('free' when a batch of the check images matched
    them one by one within 1e-5 in theta, else 'fixed': a batch-1 model is written instead),
    batch_theta_max, seconds."""
    from util.model.onnx_backend import OnnxBackend
    start = time.perf_counter()
    images = check_images()
    _quiet_loggers()
    reference, graph_def, weights, shape = _load(load_path, images)
    record = convert(graph_def, weights, path=path, **shape)
    _release_memory()
    optimize_file(path)
    onnx = OnnxBackend(path)
    record['errors_vs_tf'] = errors(reference, predicted(onnx, images, one_by_one=True))
    if record['batch'] == 'free':
        try:
            record['batch_theta_max'] = batch_errors(onnx, images)['theta_max']
        except Exception as exc:  # noqa: BLE001 - ORT's own errors: the rewrite was wrong
            record['batch_theta_max'] = None
            record['batch_error'] = one_line(exc)
        if record['batch_theta_max'] is None or not record['batch_theta_max'] <= BATCH_THETA_MAX:
            del onnx
            _, graph_def, weights, shape = _load(load_path, images[:0])
            record.update(convert(graph_def, weights, path=path, free=False, **shape))
            optimize_file(path)
            record['errors_vs_tf'] = errors(reference, predicted(OnnxBackend(path), images))
    record['seconds'] = time.perf_counter() - start
    return record


def main(argv):
    """``LOAD_PATH OUT.onnx``: convert and check; the record (JSON) is the last stdout line.
    Exit status 1 with one line on stderr when anything fails."""
    load_path, path = argv
    try:
        record = convert_checked(load_path, path)
    except Exception as exc:  # noqa: BLE001 - the parent reports it in one line
        print(one_line(exc, with_type=True), file=sys.stderr)
        return 1
    print(json.dumps(record))
    return 0


if __name__ == '__main__':
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    sys.exit(main(sys.argv[1:]))
