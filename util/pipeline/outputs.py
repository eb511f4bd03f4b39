"""Where each output of a frame goes: the one place that names output files."""
import os

from util.io.mesh_io import mtl_name

# output kind -> (folder, extension); NAME is the frame's name. 'texture_mtl' follows
# 'texture_obj' (util.io.mesh_io.mtl_name).
OUTPUT_FILES = {
    'panel': ('images', '.png'),
    'mesh': ('mesh', '.obj'),
    'params': ('params', '.npy'),
    'neutral': ('neutral_mesh', '.obj'),
    'texture': ('texture', '.png'),
    'texture_obj': ('texture', '.obj'),
}


def requested_kinds(config):
    """The output kinds this run writes, in writing order (the panel always)."""
    kinds = ['panel']
    kinds += ['mesh'] if config.save_obj_file else []
    kinds += ['params'] if config.save_flame_parameters else []
    kinds += ['neutral'] if config.neutralize_expression else []
    kinds += ['texture', 'texture_mtl', 'texture_obj'] if config.save_texture else []
    return kinds


def output_path(name, kind):
    """Relative path of output ``kind`` of frame ``name``, e.g. ('a', 'mesh') -> mesh/a.obj."""
    if kind == 'texture_mtl':  # the material library the textured OBJ names, next to it
        obj = output_path(name, 'texture_obj')
        return os.path.join(os.path.dirname(obj), mtl_name(obj))
    folder, ext = OUTPUT_FILES[kind]
    return os.path.join(folder, name + ext)
