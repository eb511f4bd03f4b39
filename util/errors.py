"""Errors as users see them: one line, naming the file.

The one place that turns an exception into a line (``one_line``), makes file names printable
and prints a failed item's ``error:`` line (``report``), and says when a failure is memory
running out (``out_of_memory``). Imports nothing of this project.
"""
import errno
import re


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
    if isinstance(error, MemoryError) and not isinstance(error, OutOfMemory):
        error = out_of_memory(source, 'reading or processing it', error)
    msg = str(error).replace(source, printable(source)) if str(error) else ''
    msg = one_line(msg) if msg.strip() else type(error).__name__
    if printable(source) not in msg:
        msg = '%s: %s' % (printable(source), msg)
    print('error: ' + printable(msg), file=err)
    return printable(msg)


# what native libraries say when memory (or address space) runs out while they load
MEMORY_SIGNS = ('failed to map segment from shared object', 'cannot allocate memory',
                'out of memory', 'std::bad_alloc')


class OutOfMemory(MemoryError):
    """A step ran out of memory; the message is one line saying which step and how much."""


def is_out_of_memory(error):
    """Did ``error`` come from memory running out? A MemoryError, an OSError with ENOMEM, or
    an ImportError of a native library that could not be mapped (TensorFlow's, say)."""
    if isinstance(error, MemoryError):
        return True
    if isinstance(error, OSError) and error.errno == errno.ENOMEM:
        return True
    text = str(error).lower()
    return isinstance(error, ImportError) and any(sign in text for sign in MEMORY_SIGNS)


def _megabytes(n):
    return '%d MB' % max(1, round(n / 2 ** 20))


def out_of_memory(subject, step, error=None, needed=None):
    """OutOfMemory with the line '``subject``: out of memory while ``step`` (how much)': the
    size numpy's error names, else ``needed`` (bytes the step needs at least, when known),
    and the limit this process runs under (ulimit -v) when there is one."""
    details = []
    match = re.search(r'Unable to allocate ([0-9.]+ [KMGTP]?i?B)', str(error or ''))
    if match:
        details.append('%s more were asked for' % match.group(1))
    elif needed:
        details.append('it needs at least %s' % _megabytes(needed))
    try:
        import resource
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit != resource.RLIM_INFINITY:
            details.append('this process may use %s in all (ulimit -v)' % _megabytes(limit))
    except (ImportError, ValueError, OSError):  # no such limit on this platform
        pass
    if not details and error is not None and str(error).strip():
        details.append(one_line(error))
    return OutOfMemory('%s: out of memory while %s%s' % (
        subject, step, ' (%s)' % '; '.join(details) if details else ''))
