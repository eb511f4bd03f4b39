"""The predicted mesh, mesh/NAME.obj (and mesh/NAME/<frame>.obj for a video track):
vertices in FLAME order, the run's faces (docs/formats.md §5)."""
from util.outputs.naming import output_path


def mesh_bytes(pred, context, vertex_lines=None):
    """OBJ bytes of a prediction's vertices with the run's faces; vertex_lines: its 'v' lines
    already formatted (util.io.mesh_io.vertex_text), or None."""
    return context.obj_mesh.obj_text(pred.vertices, vertex_lines=vertex_lines).encode()


def mesh_outputs(name, pred, context, vertex_lines=None):
    """{mesh/NAME.obj: bytes} of a frame."""
    return {output_path(name, 'mesh'): mesh_bytes(pred, context, vertex_lines)}
