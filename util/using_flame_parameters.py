"""The original's module path, kept for library users: the neutral (VOCA) template of a params
file (util/outputs/neutral.py) and FLAME on RingNet's parameters (smpl_webuser/flame_params.py).
"""
from smpl_webuser.flame_params import flame_vertices, neutral_vertices  # noqa: F401
from util.outputs.neutral import make_prdicted_mesh_neutral  # noqa: F401
