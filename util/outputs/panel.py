"""The 4-panel image of a picture, images/NAME.png (docs/formats.md §4); with two or more faces
one more per face, images/NAME_face<k>.png, around its crop; and the overlay panel alone (a
video's frames)."""
from util.io.image_io import encode_image
from util.face.frames import crop_box
from util.outputs.context import camera
from util.outputs.landmarks import landmark_points
from util.outputs.naming import output_path
from util.render.renderer import (MAX_PANEL_SIDE, box_view, fit_to_side, four_panel,
                                  overlay_panel, scale_to_side)

FACE_PANEL_SIDE = 512  # a face's crop is drawn this tall (or wide): small faces enlarged


def landmark_dots(preds, cams, context):
    """The landmark dots to draw ([(68,2)] pixels, with --draw_landmarks; else [])."""
    return ([landmark_points(p, cam, context)[0] for p, cam in zip(preds, cams)]
            if context.draw_landmarks else [])


def panel_image(image, preds, context):
    """(H',W',3) the 4 panels of ``image`` (H,W,3) with every prediction's mesh (landmarks
    with --draw_landmarks); photos over MAX_PANEL_SIDE are drawn smaller (the texture still
    samples the full image)."""
    image, cams = fit_to_side(image, [camera(p, context) for p in preds], MAX_PANEL_SIDE)
    return four_panel(image, [(p.vertices, cam) for p, cam in zip(preds, cams)],
                      context.faces, landmark_dots(preds, cams, context))


def panel_outputs(picture, preds, context):
    """{images/NAME.png: bytes} of a picture whose frames predicted ``preds``."""
    return {output_path(picture.name, 'panel'):
            encode_image(panel_image(picture.image, preds, context))}


def face_panel_outputs(picture, preds, context):
    """{images/NAME_face<k>.png: bytes} of each frame of a picture with two or more faces
    (else {}): the 4 panels of the face's crop box, scaled to FACE_PANEL_SIDE, so a small face
    in a group photo can be seen."""
    if len(picture.frames) < 2:
        return {}
    out = {}
    for frame, pred in zip(picture.frames, preds):
        view, cam = box_view(picture.image, camera(pred, context), crop_box(frame))
        view, (cam,) = scale_to_side(view, [cam], FACE_PANEL_SIDE)
        image = four_panel(view, [(pred.vertices, cam)], context.faces,
                           landmark_dots([pred], [cam], context))
        out[output_path(frame.name, 'face_panel')] = encode_image(image)
    return out


def overlay_image(image, preds, context):
    """A video frame (H,W,3) with every found track's mesh over it (landmarks with
    --draw_landmarks), at the frame's size: four_panel's second panel."""
    cams = [camera(p, context) for p in preds]
    return overlay_panel(image, [(p.vertices, cam) for p, cam in zip(preds, cams)],
                         context.faces, landmark_dots(preds, cams, context))
