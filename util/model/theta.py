"""RingNet's theta vector and its parts (docs/formats.md §2).

theta = [cam (3) | pose (pose_params) | shape (shape_params) | expression (expression_params)];
the counts default to the config flags' defaults 6 / 100 / 50, i.e. 159 values.
"""
import collections

import numpy as np

N_CAM = 3


def split_theta(theta, pose_params=6, shape_params=100, expression_params=50):
    """theta (..., 159) -> dict cam (..., 3), pose (..., 6), shape (..., 100),
    expression (..., 50), keeping the leading dimensions."""
    theta = np.asarray(theta)
    sizes = (('cam', N_CAM), ('pose', pose_params), ('shape', shape_params),
             ('expression', expression_params))
    total = sum(size for _, size in sizes)
    if theta.ndim == 0 or theta.shape[-1] != total:
        raise ValueError('theta must have %d values in its last axis, got shape %s'
                         % (total, theta.shape))
    out, start = {}, 0
    for name, size in sizes:
        out[name] = theta[..., start:start + size]
        start += size
    return out


class ThetaLayout(collections.namedtuple('ThetaLayout', 'pose shape expression')):
    """How many pose, shape and expression values follow the 3 camera values in theta (the
    --pose_params / --shape_params / --expression_params flags)."""
    __slots__ = ()

    @classmethod
    def of(cls, config):
        """The layout the flags of ``config`` give."""
        return cls(config.pose_params, config.shape_params, config.expression_params)

    @property
    def size(self):
        """Values in theta: 3 + pose + shape + expression."""
        return N_CAM + self.pose + self.shape + self.expression

    def split(self, theta):
        """split_theta with this layout."""
        return split_theta(theta, self.pose, self.shape, self.expression)
