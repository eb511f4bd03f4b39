"""Errors as users see them: one line, naming the file.

The one place that turns an exception into a line (``one_line``), makes file names printable
and prints a failed item's ``error:`` line (``report``). Imports nothing of this project.
"""


def one_line(error, with_type=False, last=False):
    """The first non-empty line of ``str(error)`` (stripped; ``last``: the last one, where a
    library puts the cause last: TensorFlow op errors, ONNX Runtime, Ray), or the exception's
    type name when it says nothing; ``with_type``: prefixed 'Type: ' (for errors of other
    libraries, whose message alone may not say what failed)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = (lines[-1] if last else lines[0]) if lines else ''
    if not text:
        return type(error).__name__
    return '%s: %s' % (type(error).__name__, text) if with_type else text


def printable(text):
    """``text`` on one line: control characters and undecodable bytes of file names
    (surrogate escapes) written as backslash escapes."""
    raw = text.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')
    return ''.join(ch if ch.isprintable() else ch.encode('unicode_escape').decode('ascii')
                   for ch in raw)


def report(source, error, err):
    """Print one line 'error: SOURCE: message' for a failed item (the message's first line,
    the source made printable first, so a file name with a newline cannot cut the message);
    return the line without 'error: '."""
    msg = str(error).replace(source, printable(source)) if str(error) else ''
    msg = one_line(msg) if msg.strip() else type(error).__name__
    if printable(source) not in msg:
        msg = '%s: %s' % (printable(source), msg)
    print('error: ' + printable(msg), file=err)
    return printable(msg)
