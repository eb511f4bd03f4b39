"""A video is decoded and written as a stream: the command's peak memory (VmHWM) for a
600-frame clip stays within 150 MB of that for a 30-frame clip, with every output that could
grow with the clip on (a mesh per frame, the track with landmarks and its JSON twin).

Small frames (160x120) keep it quick; the network still runs on a 224x224 crop of every frame.
"""
import json
import os
import subprocess
import sys
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')
WIDTH, HEIGHT = 160, 120
LIMIT_MB = 150.0

# runs the command, then prints its own peak RSS: VmHWM of this process's address space, which
# starts afresh at exec (the rusage maxrss of a child would include the big pytest parent's,
# copied at fork)
DRIVER = ("import sys, demo\n"
          "rc = demo.main(['demo'] + sys.argv[1:])\n"
          "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
          "print('VmHWM', hwm[0])\n"
          "sys.exit(rc)\n")


def write_clip(path, n, fps=25.0):
    """An n-frame WIDTHxHEIGHT mp4v clip: the sample face moving over a noisy background."""
    face = cv2.resize(cv2.imread(IMAGE), (90, 90), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(n)
    scene = cv2.resize(rng.integers(40, 216, (6, 8, 3), dtype=np.uint8), (WIDTH, HEIGHT),
                       interpolation=cv2.INTER_CUBIC)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for k in range(n):
        x = int((WIDTH - 90) * (0.5 + 0.5 * np.sin(k / 15.0)))
        y = int((HEIGHT - 90) * (0.5 + 0.5 * np.cos(k / 23.0)))
        frame = scene.copy()
        frame[y:y + 90, x:x + 90] = face
        writer.write(frame)
    writer.release()
    return path


def peak_rss(clip, out, checkpoint_v2, flame_assets):
    """Run the command on ``clip`` in a new process -> (its peak RSS in MB, seconds)."""
    args = ['--img_path', clip, '--out_folder', out, '--quiet',
            '--load_path', checkpoint_v2,
            '--flame_model_path', flame_assets['flame_model'],
            '--flame_texture_data_path', flame_assets['texture_data'],
            '--flame_static_embedding_path', flame_assets['static_embedding'],
            '--flame_dynamic_embedding_path', flame_assets['dynamic_embedding'],
            '--save_obj_file', '--save_flame_parameters', '--save_landmarks']
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, '-c', DRIVER] + args, cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    [kb] = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith('VmHWM')]
    return int(kb) / 1024.0, seconds


def check_outputs(out, name, n):
    """Every frame went through the network and was written: n track rows, n meshes."""
    track = np.load(os.path.join(out, 'params', name + '.npz'), allow_pickle=False)
    assert track['frame'].tolist() == list(range(n))
    assert track['found'].all() and track['landmarks_2d'].shape == (n, 68, 2)
    assert len(os.listdir(os.path.join(out, 'mesh', name))) == n
    with open(os.path.join(out, 'params', name + '.json')) as fh:
        assert len(json.load(fh)['frame']) == n
    video = cv2.VideoCapture(os.path.join(out, 'video', name + '.mp4'))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == n
    video.release()


def test_peak_memory_does_not_grow_with_the_clip(tmp_path, checkpoint_v2, flame_assets):
    measured = {}
    for n in (30, 600):
        clip = write_clip(str(tmp_path / ('clip%d.mp4' % n)), n)
        out = str(tmp_path / ('out%d' % n))
        measured[n] = peak_rss(clip, out, checkpoint_v2, flame_assets)
        check_outputs(out, 'clip%d' % n, n)
    (short, short_s), (long, long_s) = measured[30], measured[600]
    print('\npeak RSS: 30 frames %.0f MB (%.1f s), 600 frames %.0f MB (%.1f s); '
          'difference %.0f MB (limit %.0f MB)' % (short, short_s, long, long_s, long - short,
                                                  LIMIT_MB))
    assert long - short < LIMIT_MB, (short, long)
