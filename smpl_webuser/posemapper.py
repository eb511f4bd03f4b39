"""Pose-blendshape feature by name (the original module's name and entry point)."""
from smpl_webuser.lbs import pose_features

_FEATURES = {'lrotmin': pose_features}


def posemap(bs_type):
    """Feature function for blendshape type ``bs_type``: pose (N, J * 3) -> (N, P)."""
    if bs_type not in _FEATURES:
        raise ValueError('unknown pose blendshape type %r (supported: %s)'
                         % (bs_type, ', '.join(sorted(_FEATURES))))
    return _FEATURES[bs_type]
