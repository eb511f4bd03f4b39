"""Time the pipeline's stages from outside: wrap the functions it calls, restore them after.

The product code carries no timing; this module replaces the names the pipeline modules look
up (their module globals, and a few methods) with timed wrappers for the duration of a block.
"""
import collections
import contextlib
import functools
import importlib
import time

# stage -> [(module or class, attribute)], as util.pipeline looks them up
STAGES = {
    'read': [('util.pipeline.reading', 'load_image')],
    'preprocess': [('util.pipeline.runner', 'preprocess_image')],
    'render': [('util.outputs.panel', 'four_panel')],
    'neutralize': [('util.outputs.neutral', 'neutral_vertices')],
    'texture': [('util.outputs.texture', 'compute_texture_map')],
    'obj text': [('util.io.mesh_io', 'ObjTopology.obj_text'),
                 ('util.outputs.photo', 'vertex_text')],
    'png': [('util.outputs.panel', 'encode_image'), ('util.outputs.texture', 'encode_image')],
    # writing = save() less the outputs it computes first (see timed_stages)
    'save': [('util.pipeline.runner', 'Pipeline.save')],
    'outputs': [('util.pipeline.runner', 'picture_outputs')],
}


def _owner(module_name, attr):
    """(object holding the attribute, attribute name) for 'mod', 'Class.method' or 'name'."""
    owner = importlib.import_module(module_name)
    *path, name = attr.split('.')
    for part in path:
        owner = getattr(owner, part)
    return owner, name


def _timed(fn, stage, totals):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[stage] += time.perf_counter() - start
    return wrapper


@contextlib.contextmanager
def timed_stages(backend=None, extra=None):
    """Yield a Counter {stage: seconds} filled while the block runs (and 'write' when it
    ends); ``backend``'s predict is timed as 'network'; ``extra``: more stages, as STAGES."""
    totals = collections.Counter()
    patched = []
    for stage, places in list(STAGES.items()) + list((extra or {}).items()):
        for module_name, attr in places:
            owner, name = _owner(module_name, attr)
            original = getattr(owner, name)
            setattr(owner, name, _timed(original, stage, totals))
            patched.append((owner, name, original))
    if backend is not None:
        patched.append((backend, 'predict', None))
        backend.predict = _timed(backend.predict, 'network', totals)
    try:
        yield totals
    finally:
        totals['write'] = totals['save'] - totals['outputs']
        for owner, name, original in reversed(patched):
            if original is None:
                delattr(owner, name)  # the instance attribute shadowed the class method
            else:
                setattr(owner, name, original)
