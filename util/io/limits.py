"""Limits on what is read from files, shared by the readers and the command line.

It imports nothing, so ``config`` (and ``python -m demo --help``) can name the defaults without
loading numpy or OpenCV.
"""

# Default for --max_pixels: 200 megapixels (e.g. 14000 x 14000) decode to 600 MB of RGB.
MAX_PIXELS = 200_000_000
