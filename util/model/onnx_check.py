"""Fixed inputs for comparing two backends, and the comparisons (docs/formats.md §13): the
conversion against TensorFlow, int8 against fp32, a batch against single images."""
import numpy as np

BATCH_THETA_MAX = 1e-5  # a batch may change theta this much from single runs, or it runs 1 by 1


def check_images(size=224, count=4, seed=0):
    """(count, size, size, 3) float32 in [-1, 1]: fixed inputs for comparing two backends:
    zeros, uniform noise, and smooth gradients (fixed seed; no file needed)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    images = [np.zeros((size, size, 3), np.float32),
              rng.uniform(-1, 1, (size, size, 3)).astype(np.float32)]
    for k in range(count - 2):
        phase = rng.uniform(0, np.pi, 3)
        grid = np.sin(3 * ramp[:, None, None] + 2 * ramp[None, :, None] + phase) * 0.9
        images.append(grid.astype(np.float32))
    return np.stack(images[:count])


def errors(reference, candidate):
    """Errors of ``candidate`` against ``reference``, each (vertices (N, V, 3), theta (N, T))
    -> dict theta_max (abs), vertices_max_m, vertices_mean_m (Euclidean distance per vertex);
    NaN where either is not finite."""
    (ref_v, ref_t), (got_v, got_t) = reference, candidate
    dist = np.linalg.norm(got_v.astype(np.float64) - ref_v, axis=-1)
    return {'theta_max': float(np.abs(got_t.astype(np.float64) - ref_t).max()),
            'vertices_max_m': float(dist.max()), 'vertices_mean_m': float(dist.mean())}


def predicted(backend, images, one_by_one=False):
    """(vertices (N, V, 3), theta (N, T)) of ``backend`` on ``images`` (N, S, S, 3): in one
    call, or one_by_one (each image alone: the backend's batch-1 path)."""
    if not one_by_one:
        return backend.predict(images, get_parameters=True)
    runs = [backend.predict(image[None], get_parameters=True) for image in images]
    return np.concatenate([v for v, _ in runs]), np.concatenate([t for _, t in runs])


def compare(reference, candidate, images):
    """errors() of backend ``candidate`` against backend ``reference`` on ``images``."""
    return errors(predicted(reference, images), predicted(candidate, images))


def batch_errors(backend, images):
    """errors() of ``backend`` on the batch ``images`` against the same backend image by
    image: what sharing a batch changes (zeros when nothing does)."""
    return errors(predicted(backend, images, one_by_one=True), predicted(backend, images))
