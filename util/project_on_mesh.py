"""The original's module path, kept for library users: texture projection lives in
util/render/project_on_mesh.py."""
from util.render.project_on_mesh import compute_texture_map  # noqa: F401
