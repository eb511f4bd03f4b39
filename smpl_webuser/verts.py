"""The stateful FLAME model object (the original module's name): arrays plus mutable parameters.

Usage like the chumpy original: ``m.betas[:100] = shape; m.pose[6:9] = jaw; m.r``; the batched
``forward`` is the fast path. All evaluation is delegated to smpl_webuser.lbs.lbs.
"""
import numpy as np

from smpl_webuser.lbs import lbs

ARRAY_NAMES = ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights', 'kintree_table',
               'f', 'bs_type', 'bs_style', 'J', 'parents')


class FlameModel(object):
    """FLAME model with current parameters ``pose`` (J * 3,), ``betas`` (K,), ``trans`` (3,).

    ``arrays`` is the dict of smpl_webuser.serialization.load_model_arrays.
    """

    def __init__(self, arrays):
        for name in ARRAY_NAMES:
            setattr(self, name, arrays[name])
        self.pose = np.zeros(len(self.parents) * 3)
        self.betas = np.zeros(self.shapedirs.shape[2])
        self.trans = np.zeros(3)

    def forward(self, betas=None, pose=None, trans=None):
        """Batched evaluation: betas (N, K<=K_all), pose (N, J * 3), trans (N, 3); 1-D inputs
        are a batch of one and missing ones are zeros.
        Returns verts (N, V, 3) and posed joints (N, J, 3)."""
        given = {name: np.atleast_2d(np.asarray(value, dtype=np.float64))
                 for name, value in (('betas', betas), ('pose', pose), ('trans', trans))
                 if value is not None}
        sizes = {value.shape[0] for value in given.values()}
        if len(sizes) > 1:
            raise ValueError('FlameModel.forward: batch sizes differ: %s'
                             % {name: value.shape[0] for name, value in given.items()})
        n = sizes.pop() if sizes else 1
        return lbs(given.get('betas', np.zeros((n, self.shapedirs.shape[2]))),
                   given.get('pose', np.zeros((n, len(self.parents) * 3))),
                   self.v_template, self.shapedirs, self.posedirs, self.J_regressor,
                   self.parents, self.weights, given.get('trans'))

    @property
    def r(self):
        """Posed vertices (V, 3) for the current pose / betas / trans."""
        return self.forward(self.betas, self.pose, self.trans)[0][0]

    @property
    def J_transformed(self):
        """Posed joints (J, 3) for the current pose / betas / trans."""
        return self.forward(self.betas, self.pose, self.trans)[1][0]
