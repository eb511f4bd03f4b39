"""Network backends: the interface the pipeline relies on, and the one place that picks one.

A backend is any object with
- ``predict(images, get_parameters=True)``: images (N, S, S, 3) float32 in [-1, 1] ->
  (vertices (N, V, 3) float32, theta (N, T) float32) (the original RingNet_inference
  signature; the pipeline always asks for both);
- plain ints ``image_size`` (S, or None when the graph does not fix it), ``n_theta`` (T)
  and ``n_vertices`` (V).

run_RingNet.RingNet_inference (the original checkpoint on TensorFlow) is one; a second backend
(e.g. ONNX Runtime) implements the same four names and is added to ``load_backend``.
"""
import types


def load_backend(load_path, batch_size=1):
    """The network for the checkpoint at ``load_path`` (prefix or folder).

    TensorFlow is imported here, only when a network is actually needed.
    """
    from run_RingNet import RingNet_inference
    return RingNet_inference(types.SimpleNamespace(load_path=load_path, batch_size=batch_size))
