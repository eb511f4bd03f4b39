"""A video clip through the pipeline vs the same frames as a folder of images, in one run.

    python -m bench.bench_video [--frames 120] [--fps 25] [--rounds 3] [--backend tf]

Makes a 640x480 clip (the sample face moving over a textured background) with
cv2.VideoWriter and writes the same frames as images into a folder; then, in this one
process, on the --demo assets (synthetic model and checkpoint, same graph size as the
original) and with default flags, one Pipeline runs (a) the folder (each image: its 4-panel
PNG) and (b) the clip (the track npz and the overlay video); (c) is decode only
(util.io.video_io.VideoReader.frames) and (d) the network alone on one crop. Each is the
best of --rounds, after a warm-up; then one timed round of (a) and (b) gives the stage
picture. Prints the ratio video fps / images per second (goal >= 0.9x). Asserts nothing but
that every input was done.
"""
import argparse
import contextlib
import functools
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# FFmpeg reads its log level once, at first use, which here is writing the clip: keep the
# encoder probes' chatter (h264_v4l2m2m ...) quiet, as the command does
os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')
# bench_demo sets the path and TensorFlow's log level
from bench.bench_demo import IMAGE, per_call  # noqa: E402
from bench.stage_timer import timed_stages  # noqa: E402

WIDTH, HEIGHT = 640, 480
# stages only a clip has, as the pipeline modules look them up (bench.stage_timer's style);
# 'decode' is the time spent inside VideoReader.frames (demux, decode, BGR -> RGB)
VIDEO_STAGES = {
    'overlay': [('util.outputs.panel', 'overlay_panel')],
    'video encode': [('util.io.video_io', 'VideoWriter.write')],
    'track row': [('util.pipeline.clip', 'track_row')],
    'clip commit': [('util.pipeline.clip', 'ClipRecorder.finish')],
    'add frame': [('util.pipeline.clip', 'ClipRecorder.add')],
}


def background(rng):
    """(HEIGHT, WIDTH, 3) uint8: smooth colour blobs and a grid, so the clip is not flat."""
    import cv2
    small = rng.uniform(40, 215, (HEIGHT // 40, WIDTH // 40, 3)).astype(np.float32)
    image = cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    image[::32] *= 0.7
    image[:, ::32] *= 0.7
    return np.clip(image, 0, 255).astype(np.uint8)


def clip_frames(n):
    """n (HEIGHT, WIDTH, 3) uint8 RGB frames: the sample face (250x250), slowly resized,
    moving on a Lissajous path over a fixed background, with a little sensor noise."""
    import cv2
    from util.io.image_io import load_image
    face = load_image(IMAGE)
    rng = np.random.default_rng(0)
    scene = background(rng)
    for k in range(n):
        t = k / max(n - 1, 1)
        side = int(220 + 40 * np.sin(2 * np.pi * t))
        head = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
        x = int((WIDTH - side) * (0.5 + 0.45 * np.sin(2 * np.pi * t)))
        y = int((HEIGHT - side) * (0.5 + 0.45 * np.sin(4 * np.pi * t + 1)))
        frame = scene.copy()
        frame[y:y + side, x:x + side] = head
        noise = rng.integers(-3, 4, frame.shape, dtype=np.int16)
        yield np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def write_inputs(folder, n, fps, ext):
    """Write clip.mp4 (mp4v) and frames/<k>.<ext> (the same frames) -> (clip path, frames
    folder, seconds)."""
    import cv2
    start = time.perf_counter()
    frames_dir = os.path.join(folder, 'frames')
    os.makedirs(frames_dir)
    path = os.path.join(folder, 'clip.mp4')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), float(fps),
                             (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError('OpenCV cannot write %s' % path)
    for k, rgb in enumerate(clip_frames(n)):
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        writer.write(bgr)
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == 'jpg' else []
        cv2.imwrite(os.path.join(frames_dir, '%06d.%s' % (k, ext)), bgr, params)
    writer.release()
    return path, frames_dir, time.perf_counter() - start


def _timed_generator(fn, stage, totals):
    """fn returns an iterator: time each step of it (not the consumer's work in between)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        iterator = iter(fn(*args, **kwargs))
        while True:
            start = time.perf_counter()
            try:
                value = next(iterator)
            except StopIteration:
                return
            finally:
                totals[stage] += time.perf_counter() - start
            yield value
    return wrapper


@contextlib.contextmanager
def timed_decode(totals):
    """Add the time spent inside VideoReader.frames to totals['decode'] while the block
    runs."""
    from util.io.video_io import VideoReader
    original = VideoReader.frames
    VideoReader.frames = _timed_generator(original, 'decode', totals)
    try:
        yield totals
    finally:
        VideoReader.frames = original


def best_of(rounds, fn):
    """The smallest wall time of ``rounds`` calls of fn (this machine is noisy)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=120, help='clip length (frames)')
    parser.add_argument('--fps', type=float, default=25.0)
    parser.add_argument('--rounds', type=int, default=3, help='timed rounds; the best counts')
    parser.add_argument('--image_format', choices=('jpg', 'png'), default='jpg',
                        help='format of the folder of frames')
    parser.add_argument('--backend', choices=('tf', 'onnx', 'auto'), default='tf')
    args = parser.parse_args(argv)

    from config import default_config
    from util.io.video_io import VideoReader
    from util.pipeline import Pipeline
    from util.model.backend import load_backend
    from synthetic.demo_assets import ensure_demo_assets
    from util.pipeline.inputs import input_entries
    from util.pipeline.reading import work_items
    from util.face.preprocess import preprocess_image

    work = tempfile.mkdtemp(prefix='ringnet_video_bench_')
    try:
        clip, frames_dir, made_s = write_inputs(work, args.frames, args.fps, args.image_format)
        warm_clip, warm_dir, _ = write_inputs(os.path.join(work, 'warm'), 4, args.fps,
                                              args.image_format)
        config = default_config(demo=True)
        files = ensure_demo_assets()
        net = load_backend(files['load_path'], backend=args.backend)
        pipe = Pipeline(config, files, net)

        def run(path, expected):
            """One pipeline run over ``path`` into a new output folder (the last one removed)."""
            out = os.path.join(work, 'out')
            shutil.rmtree(out, ignore_errors=True)
            items = work_items(input_entries(path, exclude=out), config)
            result = pipe.run(items, out)
            if result.done != expected or result.failed:
                raise RuntimeError('%s: %s' % (path, result))
            return out

        def decode():
            with VideoReader(clip) as reader:
                count = sum(1 for _ in reader.frames())
            if count != args.frames:
                raise RuntimeError('decoded %d of %d frames' % (count, args.frames))

        # warm: numba JIT of the renderer, TF graph optimisation, the codec probe
        run(warm_dir, 4)
        out = run(warm_clip, 1)
        outputs = sorted(os.path.relpath(os.path.join(d, f), out)
                         for d, _, names in os.walk(out) for f in names)
        decode()

        image_s = best_of(args.rounds, lambda: run(frames_dir, args.frames))
        video_s = best_of(args.rounds, lambda: run(clip, 1))
        decode_s = best_of(args.rounds, decode)
        crop = preprocess_image(next(clip_frames(1)), config.img_size)[0][None]
        network_s = per_call(lambda: net.predict(crop, True), 20, args.rounds)

        with timed_stages(net) as image_stages:
            run(frames_dir, args.frames)
        with timed_stages(net, VIDEO_STAGES) as video_stages, timed_decode(video_stages):
            run(clip, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n = args.frames
    image_ips, video_fps, decode_fps = n / image_s, n / video_s, n / decode_s
    print('inputs: %d frames of %dx%d at %g fps, clip (mp4v) + %s folder written in %.1f s; '
          'backend %s; best of %d rounds' % (n, WIDTH, HEIGHT, args.fps, args.image_format,
                                              made_s, args.backend, args.rounds))
    print('a clip run writes: %s' % ', '.join(outputs))
    print('(a) image pipeline (4-panel PNG each): %6.2f images/s  (%6.1f ms per image)'
          % (image_ips, 1e3 / image_ips))
    print('(b) video pipeline (npz + overlay):    %6.2f frames/s  (%6.1f ms per frame)'
          % (video_fps, 1e3 / video_fps))
    print('(c) decode only (VideoReader.frames):  %6.1f frames/s  (%6.1f ms per frame)'
          % (decode_fps, 1e3 / decode_fps))
    print('(d) network alone (backend.predict):   %6.2f calls/s   (%6.1f ms per call)'
          % (1 / network_s, 1e3 * network_s))
    print('ratio video fps / image images-per-second: %.2fx (goal >= 0.9x)'
          % (video_fps / image_ips))
    print('ratio video fps / network calls per second: %.2fx (1.0x: the network is all the '
          'video costs)' % (video_fps * network_s))

    print('\nstages, ms per frame, from one timed round of each (main thread: read/decode, '
          'preprocess, network; worker thread: the rest, overlapped with the next frame\'s '
          'network):')
    rows = [('read / decode', 'read', 'decode'), ('preprocess', 'preprocess', 'preprocess'),
            ('network', 'network', 'network'), ('track row', None, 'track row'),
            ('render', 'render', 'overlay'), ('png / video enc', 'png', 'video encode'),
            ('write', 'write', None), ('clip commit', None, 'clip commit')]
    print('  %-16s %10s %10s' % ('stage', 'images', 'video'))
    for label, image_key, video_key in rows:
        cells = ['%10.1f' % (1e3 * stages[key] / n) if key else '%10s' % '-'
                 for stages, key in ((image_stages, image_key), (video_stages, video_key))]
        print('  %-16s %s %s' % (label, *cells))
    main_image = sum(image_stages[k] for k in ('read', 'preprocess', 'network'))
    main_video = sum(video_stages[k] for k in ('decode', 'preprocess', 'network'))
    worker_image = image_stages['save']
    worker_video = video_stages['add frame'] + video_stages['clip commit']
    print('  %-16s %10.1f %10.1f' % ('main thread', 1e3 * main_image / n, 1e3 * main_video / n))
    print('  %-16s %10.1f %10.1f' % ('worker thread', 1e3 * worker_image / n,
                                     1e3 * worker_video / n))
    print('  %-16s %10.1f %10.1f  (best untimed round)' % ('wall', 1e3 * image_s / n,
                                                           1e3 * video_s / n))


if __name__ == '__main__':
    main()
