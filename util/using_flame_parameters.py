"""Neutral (VOCA) template from predicted FLAME parameters (formats §5; the original module name).

The template is FLAME evaluated with the predicted shape, zero expression, zero pose and zero
translation, i.e. the identity without the expression and head pose of the photo.
"""
import numpy as np

from smpl_webuser.serialization import load_model
from smpl_webuser.verts import FlameModel
from util.flame_params import flame_betas
from util.mesh_io import Mesh
from util.safe_pickle import load_npy_dict


def neutral_vertices(model, shape, n_shape=300):
    """model: FlameModel or a model dict; shape (S,) or (N, S), S <= n_shape ->
    vertices (V, 3) or (N, V, 3) of the neutral template."""
    if not isinstance(model, FlameModel):
        model = load_model(model)
    shape = np.asarray(shape, dtype=np.float64)
    n_expr = model.shapedirs.shape[2] - n_shape
    if n_expr < 0:
        raise ValueError('the model has %d shape components, fewer than n_shape=%d'
                         % (model.shapedirs.shape[2], n_shape))
    betas = flame_betas(shape, np.zeros(shape.shape[:-1] + (0,)), n_shape, n_expr)
    verts, _ = model.forward(betas=betas.reshape(-1, betas.shape[-1]))
    return verts if shape.ndim > 1 else verts[0]


def make_prdicted_mesh_neutral(predicted_params_path, flame_model_path):
    """Neutral template Mesh for a params .npy written by the demo (dict with 'shape')."""
    params = load_npy_dict(predicted_params_path)
    if 'shape' not in params:
        raise ValueError("%s: no 'shape' entry in the parameters" % predicted_params_path)
    model = load_model(flame_model_path)
    return Mesh(neutral_vertices(model, params['shape']), model.f)
