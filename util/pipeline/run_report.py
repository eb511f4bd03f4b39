"""The run's report, OUT/report.html and OUT/run.json (util.outputs.report), written at the
end of a run from its manifest, so inputs skipped by --skip_existing and inputs done on Ray
workers are in it like the others."""
import datetime
import time

from util.errors import printable
from util.io.atomic import write_files
from util.outputs.naming import REPORT_FOLDER
from util.outputs.report import report_files
from util.pipeline.manifest import read_manifest

BACKEND_NAMES = {'util.model.tf_backend': 'tf', 'util.model.onnx_backend': 'onnx'}


class RunClock:
    """When the run started (wall clock, for run.json) and how long it has run (seconds)."""

    def __init__(self):
        self.started = datetime.datetime.now().astimezone().isoformat(timespec='seconds')
        self._start = time.perf_counter()

    def seconds(self):
        return round(time.perf_counter() - self._start, 3)


def write_run_report(config, inputs, clock, interrupted, backend=None):
    """Write the report of the run whose manifest is in config.out_folder -> True, or False
    when the manifest holds no record (nothing was processed). inputs: how many inputs the run
    had; backend: the loaded backend (None on Ray: the flag is recorded). Raises OSError."""
    records = list(read_manifest(config.out_folder).values())
    if not records:
        return False
    run = {'seconds': clock.seconds(), 'inputs': inputs,
           'backend': (BACKEND_NAMES.get(type(backend).__module__, config.backend)
                       if backend is not None else config.backend),
           'precision': config.precision, 'engine': config.engine,
           'interrupted': bool(interrupted), 'started': clock.started,
           'flags': {name: value for name, value in sorted(config.flag_values_dict().items())
                     if name not in ('help', 'helpfull', 'helpshort', 'helpxml')}}
    write_files(config.out_folder, report_files(records, run, config.out_folder),
                prune=[REPORT_FOLDER])
    return True


def report_run(config, inputs, clock, result, backend, err):
    """write_run_report at the end of a run -> its RunResult (util.pipeline.runner), one
    failure more when the report cannot be written (one line on ``err``), interrupted when
    Ctrl-C stops the report (the outputs are all there; the report is left unfinished)."""
    try:
        write_run_report(config, inputs, clock, result.interrupted, backend)
    except (OSError, ValueError) as e:
        print('error: %s: the report cannot be written (%s)'
              % (printable(config.out_folder), e), file=err)
        return result._replace(failed=result.failed + 1)
    except KeyboardInterrupt:
        print('error: the report was not finished (interrupted)', file=err)
        return result._replace(interrupted=True)
    return result
