"""The layer map (docs/ARCHITECTURE.md), checked on the source with ``ast``.

Ranks: 0 util.io (and util/io/*), util.errors and the util package itself; 1 smpl_webuser
(FLAME); 2 util.model, util.face, util.render (per-image steps) and util.now (the NoW
benchmark's metric); 3 util.outputs and synthetic; 4 util.pipeline; 5 demo, config, now_evaluation and the original's import paths kept for
library users (run_RingNet, util.renderer, util.project_on_mesh, util.using_flame_parameters),
which nothing of ours imports. A module may import its own rank or lower. Extra rules: only
demo (and synthetic itself) imports ``synthetic``; only util.model.tf_backend,
synthetic.checkpoint, util.face.detect, util.face.detector_convert and util.model.onnx_convert
import ``tensorflow``; only util.face.detect and util.face.detector_convert (a child process's
module) import ``mtcnn`` (which loads TensorFlow itself); only
util.pipeline.ray_runner imports ``ray``; the folders (util.io, util.face, ...) import each other
without a cycle. Every import counts, at any depth (inside functions, classes, try/if blocks),
relative ones included, and so do ``importlib.import_module('name')`` / ``__import__('name')``
with a literal name. tests/ and bench/ are not checked; third-party modules are ignored.
"""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

UNCHECKED_TOP = ('tests', 'bench')
SYNTHETIC_IMPORTERS = ('demo',)
TENSORFLOW_IMPORTERS = ('util.model.tf_backend', 'synthetic.checkpoint', 'util.face.detect',
                        'util.face.detector_convert', 'util.model.onnx_convert')
MTCNN_IMPORTERS = ('util.face.detect', 'util.face.detector_convert')
RAY_IMPORTERS = ('util.pipeline.ray_runner',)
# the original's module paths, thin re-exports for library users
COMPAT_PATHS = ('run_RingNet', 'util.renderer', 'util.project_on_mesh',
                'util.using_flame_parameters')
UTIL_RANKS = {None: 0, 'io': 0, 'errors': 0, 'model': 2, 'face': 2, 'render': 2, 'now': 2,
              'outputs': 3, 'pipeline': 4}
TOP_RANKS = {'smpl_webuser': 1, 'synthetic': 3, 'demo': 5, 'config': 5, 'now_evaluation': 5}


def rank(name):
    """Layer of a dotted module (or module.attribute) name of this project; None if not ours
    (or not in the map)."""
    if any(_within(name, path) for path in COMPAT_PATHS):
        return 5
    parts = name.split('.')
    if parts[0] == 'util':
        return UTIL_RANKS.get(parts[1] if len(parts) > 1 else None)
    return TOP_RANKS.get(parts[0])


def folder(name):
    """The folder a module belongs to, for the cycle check: 'util.face.x' -> 'util.face',
    'smpl_webuser.lbs' -> 'smpl_webuser'; None for top-level modules and files of util/."""
    parts = name.split('.')
    if parts[0] == 'util' and len(parts) > 2:
        return '.'.join(parts[:2])
    return parts[0] if parts[0] in ('smpl_webuser', 'synthetic') else None


def _modules(root):
    """(dotted name, file path) of every .py module under ``root`` except tests/ and bench/."""
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        parts = [] if rel == '.' else rel.split(os.sep)
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(('.', '__pycache__'))
            and not (not parts and d in UNCHECKED_TOP)
            and not os.path.exists(os.path.join(dirpath, d, 'pyvenv.cfg')))
        for fn in sorted(filenames):
            if fn.endswith('.py'):
                stem = fn[:-3]
                name = '.'.join(parts if stem == '__init__' else parts + [stem])
                yield name, os.path.join(dirpath, fn), stem == '__init__'


def _imports(tree, module, is_package):
    """Every name ``module`` imports: (dotted name, line), from anywhere in the tree."""
    package = module.split('.') if is_package else module.split('.')[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                base = '.'.join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                yield (base if alias.name == '*' else '%s.%s' % (base, alias.name)).strip('.'), \
                    node.lineno
        elif isinstance(node, ast.Call) and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', None)
            if called in ('import_module', '__import__'):
                yield node.args[0].value, node.lineno


def import_graph(root):
    """{module: [(imported name, line)]} for every checked module under ``root``."""
    graph = {}
    for module, path, is_package in _modules(root):
        with open(path, 'rb') as fh:
            tree = ast.parse(fh.read(), filename=path)
        graph[module] = list(_imports(tree, module, is_package))
    return graph


def _within(name, prefix):
    return name == prefix or name.startswith(prefix + '.')


def layer_violations(root):
    """[(importer, imported, why)] for every import under ``root`` that breaks the layer map."""
    found = []
    for module, imports in sorted(import_graph(root).items()):
        own = rank(module)
        if own is None:
            found.append((module, '', 'module is not in the layer map'))
            continue
        for name, _ in imports:
            other = rank(name)
            if any(_within(name, path) for path in COMPAT_PATHS) \
                    and module not in COMPAT_PATHS:
                found.append((module, name, 'imports a compatibility path'))
            if other is not None and other > own:
                found.append((module, name, 'rank %d imports rank %d' % (own, other)))
            if _within(name, 'synthetic') and not _within(module, 'synthetic') \
                    and module not in SYNTHETIC_IMPORTERS:
                found.append((module, name, 'imports synthetic'))
            if _within(name, 'tensorflow') and module not in TENSORFLOW_IMPORTERS:
                found.append((module, name, 'imports tensorflow'))
            if _within(name, 'mtcnn') and module not in MTCNN_IMPORTERS:
                found.append((module, name, 'imports mtcnn'))
            if _within(name, 'ray') and module not in RAY_IMPORTERS:
                found.append((module, name, 'imports ray'))
    return sorted(set(found))


def folder_cycles(root):
    """Folder pairs importing each other, directly or through other folders: [(a, b)]."""
    edges = {}
    for module, imports in import_graph(root).items():
        for name, _ in imports:
            a, b = folder(module), folder(name)
            if a and b and a != b and rank(name) is not None:
                edges.setdefault(a, set()).add(b)

    def reaches(start, goal, seen):
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
                   for nxt in edges.get(start, ()))
    return sorted((a, b) for a in edges for b in edges[a] if a < b and reaches(b, a, {b}))


# ---------------------------------------------------------------------------------------------


def test_repository_follows_the_layer_map():
    graph = import_graph(ROOT)
    # the walk really saw the project (so an empty answer below means something)
    assert {'util.io.atomic', 'smpl_webuser.lbs', 'util.face.preprocess', 'run_RingNet',
            'synthetic.checkpoint', 'util.model.backend', 'util.outputs.panel',
            'util.pipeline.runner', 'demo', 'config'} <= set(graph)
    assert not any(_within(m, 'tests') or _within(m, 'bench') for m in graph)
    names = {m: {n for n, _ in imports} for m, imports in graph.items()}
    assert 'util.model.tf_backend.RingNet_inference' in names['util.model.backend']  # in a def
    assert 'tensorflow' in names['util.model.tf_backend']
    assert layer_violations(ROOT) == []
    assert folder_cycles(ROOT) == []


def _write(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


FAKE_TREE = {
    # --- violations ---
    'util/io/x.py': 'from util.pipeline.runner import Pipeline\n',
    'util/io/y.py': 'def f():\n    from ..pipeline import reading\n',  # relative, in a function
    'util/face/foo.py': 'import numpy as np\nimport synthetic.flame\n',
    'util/misc.py': 'import os\n',  # a file of util/ outside the map
    'smpl_webuser/a.py': 'import os\n\n\nclass A:\n    def m(self):\n        if True:\n'
                         '            import util.render.renderer\n',
    'util/pipeline/reading.py': 'try:\n    from synthetic import demo_assets\nexcept ImportError:\n'
                                '    pass\n',
    'util/face/bar.py': 'def load():\n    import tensorflow as tf\n    from mtcnn import MTCNN\n',
    'util/render/baz.py': 'import importlib\n\n\ndef g():\n    return importlib.import_module('
                          '"tensorflow.compat.v1")\n',
    'util/outputs/panel.py': 'from util.renderer import four_panel\n',  # the compat path
    'util/model/cyc.py': 'from util.render.geometry import n\n',  # model <-> render
    'util/render/geometry.py': 'def n():\n    from util.model.theta import split_theta\n',
    'config.py': 'from synthetic.demo_assets import DEMO_NOTICE\n',
    'tools/helper.py': 'import os\n',
    # --- allowed ---
    'util/__init__.py': '',
    'util/errors.py': '',
    'util/io/__init__.py': '',
    'util/io/atomic.py': 'import os\nfrom util.errors import one_line\n',
    'util/io/mesh_io.py': 'import numpy as np\nfrom util.io.atomic import atomic_path\n'
                          'from . import atomic\n',
    'util/render/renderer.py': 'import numba\nfrom util.face.camera import project\n'
                               'from util.io.mesh_io import Mesh\nfrom smpl_webuser.lbs import lbs\n',
    'util/renderer.py': 'from util.render.renderer import *\n',
    'util/face/camera.py': 'import numpy\n',
    'util/face/detect.py': 'class D:\n    def m(self):\n        from mtcnn import MTCNN\n',
    'smpl_webuser/__init__.py': '',
    'smpl_webuser/lbs.py': 'import scipy.sparse as sp\nfrom util.io import safe_pickle\n',
    'util/model/tf_backend.py': 'import tensorflow as tf\nfrom util.io.checkpoint_files import x\n',
    'util/model/backend.py': 'def load():\n    from util.model.tf_backend import RingNet_inference\n',
    'run_RingNet.py': 'from util.model.tf_backend import RingNet_inference\n',
    'synthetic/__init__.py': '',
    'synthetic/checkpoint.py': 'import tensorflow as tf\nfrom smpl_webuser.lbs import lbs\n',
    'synthetic/demo_assets.py': 'def gen():\n    from synthetic.checkpoint import write_checkpoint\n'
                                '    from .flame import write_flame_assets\n',
    'util/pipeline/__init__.py': 'from util.pipeline.runner import Pipeline\n',
    'util/face/frames.py': 'import collections\n',
    'util/pipeline/runner.py': 'from util.face.frames import Frame\nfrom util.face.preprocess import p\n'
                               'from ..outputs import photo\n',
    'demo.py': 'from absl import flags\nfrom config import get_config\n'
               'from synthetic.demo_assets import DEMO_NOTICE\nfrom util.pipeline import Pipeline\n',
    # --- not checked ---
    'tests/test_x.py': 'import tensorflow\nimport synthetic\n',
    'bench/b.py': 'import tensorflow\nfrom synthetic.flame import w\n',
    '.venv/lib/site.py': 'import tensorflow\n',
}


def test_fake_tree_violations_are_reported_exactly(tmp_path):
    for rel, text in FAKE_TREE.items():
        _write(tmp_path, rel, text)
    assert layer_violations(str(tmp_path)) == sorted([
        ('config', 'synthetic.demo_assets.DEMO_NOTICE', 'imports synthetic'),
        ('smpl_webuser.a', 'util.render.renderer', 'rank 1 imports rank 2'),
        ('tools.helper', '', 'module is not in the layer map'),
        ('util.misc', '', 'module is not in the layer map'),
        ('util.face.bar', 'mtcnn.MTCNN', 'imports mtcnn'),
        ('util.face.bar', 'tensorflow', 'imports tensorflow'),
        ('util.render.baz', 'tensorflow.compat.v1', 'imports tensorflow'),
        ('util.face.foo', 'synthetic.flame', 'imports synthetic'),
        ('util.face.foo', 'synthetic.flame', 'rank 2 imports rank 3'),
        ('util.io.x', 'util.pipeline.runner.Pipeline', 'rank 0 imports rank 4'),
        ('util.io.y', 'util.pipeline.reading', 'rank 0 imports rank 4'),
        ('util.outputs.panel', 'util.renderer.four_panel', 'imports a compatibility path'),
        ('util.outputs.panel', 'util.renderer.four_panel', 'rank 3 imports rank 5'),
        ('util.pipeline.reading', 'synthetic.demo_assets', 'imports synthetic'),
    ])
    cycles = folder_cycles(str(tmp_path))
    assert ('util.model', 'util.render') in cycles  # model <-> render, directly
    assert ('smpl_webuser', 'util.render') in cycles  # through the rank violation above
    assert ('util.face', 'util.model') not in cycles  # no import between them at all


def test_fake_tree_allowed_imports_are_seen(tmp_path):
    """The allowed imports above pass because the rules allow them, not because they were missed."""
    for rel, text in FAKE_TREE.items():
        _write(tmp_path, rel, text)
    names = {m: {n for n, _ in imports} for m, imports in import_graph(str(tmp_path)).items()}
    assert 'util.model.tf_backend.RingNet_inference' in names['util.model.backend']
    assert 'tensorflow' in names['util.model.tf_backend']
    assert 'tensorflow' in names['synthetic.checkpoint']
    assert {'synthetic.checkpoint.write_checkpoint',
            'synthetic.flame.write_flame_assets'} <= names['synthetic.demo_assets']
    assert {'util.face.frames.Frame', 'util.outputs.photo'} <= names['util.pipeline.runner']
    assert 'util.io.atomic' in names['util.io.mesh_io']
    assert 'util.errors.one_line' in names['util.io.atomic']
    assert 'mtcnn.MTCNN' in names['util.face.detect']
    assert not any(m.startswith(('tests', 'bench', '.venv')) for m in names)
