"""The textured mesh, texture/NAME.{png,mtl,obj} (--save_texture, docs/formats.md §7): the
input image projected onto FLAME's UV map, and the mesh that uses it."""
import os

from util.io.image_io import encode_image
from util.io.mesh_io import mtl_name, mtl_text
from util.outputs.naming import output_path
from util.render.project_on_mesh import compute_texture_map


def texture_outputs(name, pred, cam, context, vertex_lines=None):
    """{texture/NAME.png, .mtl, .obj: bytes} of a frame seen through the render camera
    ``cam``; vertex_lines: the prediction's 'v' lines already formatted, or None."""
    texture = compute_texture_map(pred.image, pred.vertices, cam, context.texture_data,
                                  context.flame.f)
    image, obj = output_path(name, 'texture'), output_path(name, 'texture_obj')
    return {image: encode_image(texture),
            output_path(name, 'texture_mtl'): mtl_text(os.path.basename(image)).encode(),
            obj: context.obj_textured.obj_text(pred.vertices, mtl_name(obj),
                                               vertex_lines=vertex_lines).encode()}
