"""The original's module path, kept for library users: the renderer lives in util/render/."""
from util.render.renderer import *  # noqa: F401,F403
