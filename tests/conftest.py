"""Shared fixtures: synthetic assets in the original formats, generated once per test session."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(scope='session')
def flame_assets(tmp_path_factory):
    """Paths of a full-size synthetic FLAME model, texture data and landmark embeddings."""
    from synthetic.flame import write_flame_assets
    return write_flame_assets(str(tmp_path_factory.mktemp('flame')), seed=0)


@pytest.fixture(scope='session')
def checkpoint_v2(tmp_path_factory, flame_assets):
    """Prefix of a synthetic RingNet checkpoint (ResNet-50 v2 encoder)."""
    from synthetic.checkpoint import write_checkpoint
    prefix = os.path.join(str(tmp_path_factory.mktemp('ckpt_v2')), 'ring_6_68641')
    return write_checkpoint(prefix, flame_assets['flame_model'], variant='v2', seed=0)


@pytest.fixture(scope='session')
def checkpoint_v1(tmp_path_factory, flame_assets):
    """ResNet-50 v1 encoder, input ``input_images_1`` (as when the original demo imported it)."""
    from synthetic.checkpoint import write_checkpoint
    prefix = os.path.join(str(tmp_path_factory.mktemp('ckpt_v1')), 'ring_6_68641')
    return write_checkpoint(prefix, flame_assets['flame_model'], variant='v1', seed=1,
                            shadow_placeholder=True)
