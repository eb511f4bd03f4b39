"""The original's import paths keep working for library users (thin re-exports of the new homes),
and nothing of ours imports them (tests/test_layers.py)."""
import importlib

import pytest

ORIGINAL_PATHS = [
    ('run_RingNet', 'RingNet_inference', 'util.model.tf_backend'),
    ('smpl_webuser.serialization', 'load_model', 'smpl_webuser.serialization'),
    ('util.using_flame_parameters', 'make_prdicted_mesh_neutral', 'util.outputs.neutral'),
    ('util.project_on_mesh', 'compute_texture_map', 'util.render.project_on_mesh'),
    ('util.renderer', 'four_panel', 'util.render.renderer'),
    ('util.renderer', 'render_mesh', 'util.render.renderer'),
]


@pytest.mark.parametrize('path, name, home', ORIGINAL_PATHS)
def test_original_import_path_gives_the_object_of_its_new_home(path, name, home):
    assert getattr(importlib.import_module(path), name) is \
        getattr(importlib.import_module(home), name)
