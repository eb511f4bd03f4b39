"""Run the original RingNet checkpoint (a TF-1.12 graph, docs/formats.md §1) on TensorFlow 2.

Instead of ``import_meta_graph`` (which needs every op of the training graph to exist in this
TensorFlow and the original devices), only the sub-graph computing theta (``add_2``) and the
vertices (``Flamenetnormal_2/Add_9``) is imported, with devices cleared, and only the variables
it reads are restored. The input is the one image placeholder among that sub-graph's nodes,
whatever its name (``input_images`` or ``input_images_1``).
"""
import numpy as np
from google.protobuf.message import DecodeError

from util.errors import one_line
from util.io.checkpoint_files import (RINGNET_SOURCE, RINGNET_WHAT, CheckpointFilesError,
                                      data_shards, missing_checkpoint_files, missing_line,
                                      resolve_prefix)
from util.io.stderr_filter import tensorflow_start_filtered
from util.model.choices import TF_LABEL

with tensorflow_start_filtered():  # its C++ start-up notices; errors still show
    import tensorflow as tf

tf1 = tf.compat.v1

THETA_OP = 'add_2'
VERTS_OP = 'Flamenetnormal_2/Add_9'
VARIABLE_OPS = ('VariableV2', 'Variable', 'VarHandleOp')


class RingNetLoadError(IOError, ValueError):
    """The checkpoint is missing, corrupt, or not a RingNet graph; the message names the file."""


class RingNetInputError(ValueError):
    """``predict`` got images of the wrong shape or type."""


def _few(names, count=5):
    """'a, b, c, ...' of the first ``count`` names (for one-line messages)."""
    names = list(names)
    return ', '.join(names[:count]) + (', ...' if len(names) > count else '')


def _reason(exc):
    """One line saying why ``exc`` happened; TF op errors put the cause on their last line."""
    if not isinstance(exc, tf.errors.OpError):
        return one_line(exc)
    # op errors end with '[[{{node ...}}]]' context lines
    return one_line('\n'.join(line for line in exc.message.splitlines()
                              if not line.strip().startswith('[[')) or exc, last=True)


def check_files(prefix):
    """Raise RingNetLoadError naming the checkpoint files of ``prefix`` that are missing."""
    missing = missing_checkpoint_files(prefix)
    if missing:
        raise RingNetLoadError('; '.join(missing_line(path, RINGNET_WHAT, RINGNET_SOURCE)
                                         for path in missing))


def read_graph_def(meta_path):
    """GraphDef stored in a MetaGraphDef file, devices cleared."""
    meta = tf1.MetaGraphDef()
    try:
        with open(meta_path, 'rb') as fh:
            meta.ParseFromString(fh.read())
    except DecodeError as exc:
        raise RingNetLoadError('%s: corrupt or truncated graph file (%s)' % (meta_path, exc)) from exc
    for node in meta.graph_def.node:
        node.device = ''  # the original pins ops to /device:GPU:*
    return meta.graph_def


def output_subgraph(graph_def, meta_path):
    """The part of ``graph_def`` that computes theta and the vertices (no training ops)."""
    names = {node.name for node in graph_def.node}
    missing = [n for n in (THETA_OP, VERTS_OP) if n not in names]
    if missing:
        raise RingNetLoadError('%s: not a RingNet graph: no op %s (it has e.g. %s)'
                               % (meta_path, ', '.join(missing),
                                  _few(sorted(names)) or 'no ops'))
    return ancestors_subgraph(graph_def, [THETA_OP, VERTS_OP], meta_path)


def ancestors_subgraph(graph_def, outputs, meta_path):
    """GraphDef of the nodes that ``outputs`` (op names) depend on, in the original order."""
    nodes = {node.name: node for node in graph_def.node}
    keep, todo = set(), list(outputs)
    while todo:
        name = todo.pop()
        if name not in nodes:
            raise RingNetLoadError('%s: broken graph: op %s is used but not defined'
                                   % (meta_path, name))
        if name not in keep:
            keep.add(name)
            # inputs look like 'op', 'op:1' or '^op' (control dependency)
            todo.extend(i.lstrip('^').split(':')[0] for i in nodes[name].input)
    sub = tf1.GraphDef()
    sub.versions.CopyFrom(graph_def.versions)
    sub.library.CopyFrom(graph_def.library)
    sub.node.extend(node for node in graph_def.node if node.name in keep)
    for node in sub.node:  # colocation with an op left out would make the import fail
        if '_class' in node.attr:
            locs = [loc for loc in node.attr['_class'].list.s
                    if loc.decode('utf-8', 'replace')[len('loc:@'):] in keep]
            del node.attr['_class'].list.s[:]
            node.attr['_class'].list.s.extend(locs)
    return sub


def input_placeholder(graph_def, meta_path):
    """(name, shape) of the single rank-4 float placeholder in ``graph_def``."""
    found = [(node.name, tf.TensorShape(node.attr['shape'].shape)) for node in graph_def.node
             if node.op == 'Placeholder' and node.attr['dtype'].type == tf.float32.as_datatype_enum]
    found = [(name, shape) for name, shape in found if shape.rank == 4]
    if len(found) != 1:
        raise RingNetLoadError('%s: expected one image placeholder feeding %s, found %d (%s)'
                               % (meta_path, THETA_OP, len(found), _few(n for n, _ in found)))
    return found[0]


def graph_variables(graph_def):
    """Names of the variables ``graph_def`` reads (= their names in the checkpoint)."""
    return [node.name for node in graph_def.node if node.op in VARIABLE_OPS]


def checkpoint_contents(prefix):
    """{name: (shape list, dtype)} of the tensors in checkpoint ``prefix``."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    except (tf.errors.OpError, ValueError, RuntimeError) as exc:
        raise RingNetLoadError('%s.index: corrupt or unreadable checkpoint index (%s)'
                               % (prefix, _reason(exc))) from exc
    return {name: (shapes[name], dtypes[name]) for name in shapes}


def check_variables(prefix, variables, contents):
    """Raise unless the checkpoint holds every variable ({name: op}) with the graph's shape."""
    missing = sorted(set(variables) - set(contents))
    if missing:
        raise RingNetLoadError('%s.index: checkpoint lacks %d variable(s) the graph reads: %s '
                               '(it has e.g. %s)' % (prefix, len(missing), _few(missing),
                                                     _few(sorted(contents)) or 'nothing'))
    for name, op in variables.items():
        want = tf.TensorShape(op.get_attr('shape')).as_list()
        if want != list(contents[name][0]):
            raise RingNetLoadError('%s.index: variable %s has shape %s, the graph expects %s'
                                   % (prefix, name, list(contents[name][0]), want))


def restore_op(prefix, variables, contents):
    """One op restoring ``variables`` ({checkpoint name: imported variable op}) from ``prefix``."""
    names = sorted(variables)
    values = tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=names,
                                  shape_and_slices=[''] * len(names),
                                  dtypes=[contents[n][1] for n in names])
    assigns = []
    for name, value in zip(names, values):
        target = variables[name].outputs[0]
        if variables[name].type == 'VarHandleOp':
            assigns.append(tf.raw_ops.AssignVariableOp(resource=target, value=value))
        else:
            assigns.append(tf1.assign(target, value))
    return tf.group(*assigns)


class RingNet_inference:
    """RingNet on TF 2: one graph and one session for the object's lifetime.

    config needs ``load_path`` (checkpoint prefix or folder) and ``batch_size`` (only used when
    the graph's batch size is not fixed; the original's is 1). ``sess``: run in this session's
    graph instead of a new one (the model is imported under a name scope).
    """

    label = TF_LABEL

    def __init__(self, config, sess=None):
        self._load(config.load_path, config.batch_size, sess)

    @classmethod
    def from_checkpoint(cls, load_path, batch_size=1, sess=None):
        """The network of the checkpoint at ``load_path`` (prefix or folder), without a config
        object (what util.model.backend loads)."""
        net = cls.__new__(cls)
        net._load(load_path, batch_size, sess)
        return net

    def _load(self, load_path, batch_size, sess):
        try:
            prefix = resolve_prefix(load_path)
        except CheckpointFilesError as exc:
            raise RingNetLoadError(str(exc)) from exc
        check_files(prefix)
        meta_path = prefix + '.meta'
        sub = output_subgraph(read_graph_def(meta_path), meta_path)
        input_name, input_shape = input_placeholder(sub, meta_path)
        contents = checkpoint_contents(prefix)

        names = sorted(graph_variables(sub))
        self.owns_session = sess is None
        self.sess = sess or tf1.Session(graph=tf.Graph(),
                                        config=tf1.ConfigProto(allow_soft_placement=True))
        with self.sess.graph.as_default():
            try:
                elements = tf.graph_util.import_graph_def(
                    sub, name='' if sess is None else 'ringnet',
                    return_elements=[input_name + ':0', THETA_OP + ':0', VERTS_OP + ':0'] + names)
            except (ValueError, tf.errors.OpError) as exc:
                raise RingNetLoadError('%s: cannot import the graph on TensorFlow %s (%s)'
                                       % (meta_path, tf.__version__, _reason(exc))) from exc
            self.images, self.theta, self.verts = elements[:3]
            variables = dict(zip(names, elements[3:]))  # checkpoint name -> imported op
            check_variables(prefix, variables, contents)
            restore = restore_op(prefix, variables, contents)
        try:
            self.sess.run(restore)
        except tf.errors.OpError as exc:
            raise RingNetLoadError('%s: corrupt or truncated checkpoint data (%s)'
                                   % ((data_shards(prefix) or [prefix])[0], _reason(exc))) from exc
        self.image_shape = tuple(input_shape.as_list()[1:])
        self.fixed_batch = input_shape[0]
        self.batch_size = self.fixed_batch or max(1, int(batch_size))
        # the backend interface (util.model.backend): plain ints, no TensorFlow objects
        height, width = self.image_shape[:2]
        self.image_size = int(height) if height is not None and height == width else None
        self.n_theta = int(self.theta.shape[-1])
        self.n_vertices = int(self.verts.shape[1])

    def predict(self, images, get_parameters=False):
        """images (N, 224, 224, 3) float in [-1, 1] -> vertices (N, V, 3) float32,
        or (vertices, theta (N, 159) float32) with get_parameters (the original's signature;
        the pipeline always asks for both).

        Runs in chunks of the graph's batch size; the last chunk is padded and trimmed.
        """
        images = self._check_images(images)
        verts, thetas = [], []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            n = len(chunk)
            if self.fixed_batch and n < self.fixed_batch:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.fixed_batch - n, 0)])
            v, t = self.sess.run([self.verts, self.theta], {self.images: chunk})
            verts.append(v[:n])
            thetas.append(t[:n])
        if not verts:
            verts = [np.zeros((0,) + tuple(self.verts.shape[1:]))]
            thetas = [np.zeros((0,) + tuple(self.theta.shape[1:]))]
        verts = np.concatenate(verts).astype(np.float32)
        if get_parameters:
            return verts, np.concatenate(thetas).astype(np.float32)
        return verts

    def _check_images(self, images):
        """Validate and convert to float32 (N, H, W, C)."""
        images = np.asarray(images)
        want = '(N, %s)' % ', '.join('*' if d is None else str(d) for d in self.image_shape)
        if images.ndim != 4 or any(w is not None and d != w
                                   for d, w in zip(images.shape[1:], self.image_shape)):
            raise RingNetInputError('predict: images have shape %s, expected %s'
                                    % (images.shape, want))
        if images.dtype.kind != 'f':
            raise RingNetInputError('predict: images have dtype %s, expected float values in '
                                    '[-1, 1] (pixels p -> 2 * (p / 255 - 0.5))' % images.dtype)
        if not np.isfinite(images).all():
            raise RingNetInputError('predict: images contain NaN or infinite values')
        return images.astype(np.float32, copy=False)

    def close(self):
        """Close the session if this object created it."""
        if self.owns_session:
            self.sess.close()
