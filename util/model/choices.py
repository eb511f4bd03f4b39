"""Which backends and precisions exist, and which go together (imports nothing, so the command
line's flags and --help can name them without loading the network code)."""

BACKENDS = ('auto', 'tf', 'onnx')
PRECISIONS = ('fp32', 'int8')
TF_LABEL = 'TensorFlow'  # what the run's summary calls the TensorFlow backend


def check_choice(backend, precision):
    """Raise ValueError (one line) unless ``backend`` and ``precision`` name a backend that
    exists and go together (int8 runs on ONNX Runtime only)."""
    if backend not in BACKENDS or precision not in PRECISIONS:
        raise ValueError('--backend must be one of %s and --precision one of %s'
                         % ('|'.join(BACKENDS), '|'.join(PRECISIONS)))
    if backend == 'tf' and precision != 'fp32':
        raise ValueError('--precision=%s needs --backend=onnx (or auto)' % precision)
