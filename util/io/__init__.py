"""File I/O, the bottom layer: atomic writes, the restricted unpickler, images, meshes, checkpoint
file sets. Nothing here imports any other module of this project."""
