"""Peak memory of the whole demo on a 12000 x 12000 photo (the bomb's refusal time is checked
in tests/test_bad_inputs.py).

    python bench/bench_big_image.py [--side 12000]

Runs `python -m demo --demo` with every output on in a child process and reports its peak RSS
(ru_maxrss of the child). Prints numbers, asserts nothing.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import cv2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def big_photo(path, side):
    """A side x side JPEG: the sample portrait scaled up (smooth, so the file stays small)."""
    sample = cv2.imread(os.path.join(ROOT, 'input_images', '000001.jpg'))
    cv2.imwrite(path, cv2.resize(sample, (side, side), interpolation=cv2.INTER_LINEAR))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--side', type=int, default=12000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='ringnet_big_')
    photo = os.path.join(tmp, 'big.jpg')
    big_photo(photo, args.side)
    cmd = [sys.executable, '-m', 'demo', '--demo', '--img_path', photo, '--out_folder',
           os.path.join(tmp, 'out'), '--save_obj_file=True', '--save_flame_parameters=True',
           '--neutralize_expression=True', '--save_texture=True']
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    panel = cv2.imread(os.path.join(tmp, 'out', 'images', 'big.png'))
    print('%dx%d photo (%.1f MB JPEG): exit %d in %.1f s, peak RSS %.0f MB (goal < 2048), '
          'panel %s' % (args.side, args.side, os.path.getsize(photo) / 1e6, proc.returncode,
                        seconds, peak_mb, None if panel is None else panel.shape))


if __name__ == '__main__':
    main()
