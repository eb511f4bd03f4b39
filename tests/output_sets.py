"""What a run with every output on should leave on disk, for tests that count files."""
import os

from util.outputs.naming import REPORT_FOLDER, REPORT_HTML, RUN_JSON

ALL_OUTPUT_FLAGS = ['--save_obj_file=True', '--save_flame_parameters=True',
                    '--neutralize_expression=True', '--save_texture=True']
OUTPUTS = ['images/%s.png', 'mesh/%s.obj', 'params/%s.npy', 'params/%s.json',
           'neutral_mesh/%s.obj', 'texture/%s.png', 'texture/%s.mtl', 'texture/%s.obj']
MANIFEST = 'manifest.jsonl'  # one per run that got as far as processing


def files_under(root):
    """Every file below ``root``, hidden ones included, as sorted relative paths, except the
    run's report (report.html, run.json, report/: tests/test_report*.py check those)."""
    paths = (os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root)
             for f in names)
    return sorted(p for p in paths if p not in (REPORT_HTML, RUN_JSON)
                  and not p.startswith(REPORT_FOLDER + os.sep))


def outputs_of(*names, manifest=True):
    """The eight output paths of each NAME, and the run's manifest, sorted."""
    return sorted([pattern % name for name in names for pattern in OUTPUTS]
                  + ([MANIFEST] if manifest else []))
