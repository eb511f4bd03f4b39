"""The original's module path, kept for library users: ``RingNet_inference`` (the checkpoint on
TensorFlow 2) lives in util/model/tf_backend.py."""
from util.model.tf_backend import RingNet_inference  # noqa: F401
