"""The neutral (VOCA) template output, neutral_mesh/NAME.obj (docs/formats.md §5): FLAME with
the predicted shape, zero expression and zero pose."""
from smpl_webuser.flame_params import neutral_vertices
from smpl_webuser.serialization import load_model
from util.io.mesh_io import Mesh
from util.io.safe_pickle import load_npy_dict
from util.outputs.naming import output_path


def neutral_obj(shape, context, vertices=None):
    """(S,) shape -> the OBJ bytes of its neutral template (FLAME's faces); ``vertices``:
    those of neutral_vertices(context.flame, shape) when the caller has them already."""
    if vertices is None:
        vertices = neutral_vertices(context.flame, shape)
    return context.obj_neutral.obj_text(vertices).encode()


def neutral_outputs(name, shape, context):
    """{neutral_mesh/NAME.obj: bytes} of a frame whose predicted shape is ``shape`` (S,)."""
    return {output_path(name, 'neutral'): neutral_obj(shape, context)}


def make_prdicted_mesh_neutral(predicted_params_path, flame_model_path):
    """Neutral template Mesh for a params .npy written by the demo (dict with 'shape')."""
    params = load_npy_dict(predicted_params_path)
    if 'shape' not in params:
        raise ValueError("%s: no 'shape' entry in the parameters" % predicted_params_path)
    model = load_model(flame_model_path)
    return Mesh(neutral_vertices(model, params['shape']), model.f)
