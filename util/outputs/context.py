"""What every output kind reads, loaded once per run: the FLAME model, the mesh topologies
(their OBJ text formatted once), the texture data and the landmark embeddings.

Output kinds (util/outputs/*.py) are functions (frame, prediction, context) -> {relative path:
bytes}; they take everything from here and from the prediction, never from the pipeline.
"""
import collections

from smpl_webuser.serialization import load_model
from util.face.camera import render_camera
from util.face.landmarks import load_dynamic_embedding, load_static_embedding
from util.io.mesh_io import ObjTopology, load_mesh
from util.model.theta import ThetaLayout
from util.outputs.naming import requested_kinds, wants_landmarks
from util.render.texture_data import load_texture_data

OutputContext = collections.namedtuple(
    'OutputContext', 'kinds layout img_size draw_landmarks flame faces obj_mesh obj_neutral '
    'texture_data obj_textured embeddings')
OutputContext.__doc__ = """kinds: the requested output kinds (util.outputs.naming, in writing
order); layout: util.model.theta.ThetaLayout; img_size: the network's crop size;
draw_landmarks: dots on the overlay; flame: the FlameModel (smpl_webuser); faces (F,3): the
faces meshes and renders use (FLAME's, or --template_mesh's); obj_mesh / obj_neutral /
obj_textured: util.io.mesh_io.ObjTopology of the mesh, the neutral template (FLAME's faces) and
the textured mesh (None without --save_texture); texture_data: util.render.texture_data
(None without --save_texture); embeddings: (static, dynamic) landmark embeddings, or None
when no landmark is written or drawn."""


def load_output_context(config, files, n_vertices):
    """Load what the outputs of this run need -> OutputContext.

    config: the flags (config.py); files: {key: path} of util.pipeline.model_files;
    n_vertices: vertices the network predicts (the FLAME file must have as many).
    Raises ValueError naming the file that does not fit.
    """
    flame = load_model(files['flame_model_path'])
    if n_vertices != len(flame.v_template):
        raise ValueError('%s: the FLAME model has %d vertices, the network predicts %d'
                         % (files['flame_model_path'], len(flame.v_template), n_vertices))
    faces = template_faces(config.template_mesh, len(flame.v_template)) \
        if config.template_mesh else flame.f
    # the texture's UV faces (ft) pair row by row with FLAME's own faces, whatever
    # --template_mesh says
    texture_data = (load_texture_data(files['flame_texture_data_path'],
                                      len(flame.v_template), len(flame.f))
                    if config.save_texture else None)
    embeddings = ((load_static_embedding(files['flame_static_embedding_path']),
                   load_dynamic_embedding(files['flame_dynamic_embedding_path']))
                  if wants_landmarks(config) else None)
    return OutputContext(
        kinds=tuple(requested_kinds(config)), layout=ThetaLayout.of(config),
        img_size=config.img_size, draw_landmarks=bool(config.draw_landmarks), flame=flame,
        faces=faces, obj_mesh=ObjTopology(faces), obj_neutral=ObjTopology(flame.f),
        texture_data=texture_data,
        obj_textured=(ObjTopology(flame.f, texture_data['vt'], texture_data['ft'])
                      if texture_data is not None else None),
        embeddings=embeddings)


def template_faces(path, n_vertices):
    """(F,3) faces of the --template_mesh file, which must have ``n_vertices`` vertices."""
    mesh = load_mesh(path)
    if len(mesh.v) != n_vertices:
        raise ValueError('%s: template mesh has %d vertices, the FLAME model %d'
                         % (path, len(mesh.v), n_vertices))
    return mesh.f


def camera(pred, context):
    """util.face.camera.RenderCamera of a prediction, in its input image's pixels."""
    return render_camera(pred.theta[:3], pred.proc_param, context.img_size)
