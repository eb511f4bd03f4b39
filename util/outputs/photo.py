"""Every requested output of a photo: its panel, then each frame's files (mesh, parameters,
neutral template, texture, landmarks, GLB), in the order util.outputs.naming lists the kinds."""
from util.io.mesh_io import vertex_text
from util.outputs.context import camera
from util.outputs.glb import glb_outputs
from util.outputs.landmarks import landmark_outputs
from util.outputs.mesh import mesh_outputs
from util.outputs.naming import output_path
from util.outputs.neutral import neutral_outputs
from util.outputs.now import now_outputs
from util.outputs.panel import face_panel_outputs, panel_outputs
from util.outputs.params import params_outputs
from util.outputs.texture import texture_outputs


def frame_outputs(frame, pred, context, source=''):
    """{relative path: bytes} of one frame's outputs except the panel; source: the input as
    the user gave it (recorded in the JSON sidecar)."""
    kinds = context.kinds
    cam = camera(pred, context)
    # the prediction's 'v' lines are formatted once, for every OBJ that holds them
    lines = vertex_text(pred.vertices) if 'mesh' in kinds or 'texture_obj' in kinds else None
    params = {k: v.copy() for k, v in context.layout.split(pred.theta).items()}
    out = {}
    if 'mesh' in kinds:
        out.update(mesh_outputs(frame.name, pred, context, lines))
    if 'params' in kinds:
        out.update(params_outputs(frame, pred, params, source))
    if 'neutral' in kinds:
        out.update(neutral_outputs(frame.name, params['shape'], context))
    if 'texture' in kinds:
        out.update(texture_outputs(frame.name, pred, cam, context, lines))
    if 'landmarks_3d' in kinds:
        out.update(landmark_outputs(frame.name, pred, cam, context))
    if 'glb' in kinds:  # embeds the texture just made, if any
        out.update(glb_outputs(frame.name, params, context,
                               out.get(output_path(frame.name, 'texture'))))
    if 'now_mesh' in kinds:
        out.update(now_outputs(frame.name, params['shape'], context))
    return out


def picture_outputs(picture, preds, context, source=''):
    """{relative path: bytes} of every requested output of a picture whose frames predicted
    ``preds``: its panel, then each frame's outputs."""
    out = panel_outputs(picture, preds, context)
    out.update(face_panel_outputs(picture, preds, context))
    for frame, pred in zip(picture.frames, preds):
        out.update(frame_outputs(frame, pred, context, source))
    return out
