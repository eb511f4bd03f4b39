"""--help: examples first, every flag once in its group, no absl extras, commands that parse."""
import os
import re
import shlex
import subprocess
import sys

import pytest

from config import FLAG_GROUPS, build_flags, get_config, help_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY = re.compile(r'^  --(?:\[no\])?(\w+): ')


def sections(text):
    """{section title: its lines} from the help text; titles are unindented 'title:' lines."""
    found, title = {}, None
    for line in text.splitlines():
        if re.match(r'^\S.*:$', line):
            title = line[:-1]
            found[title] = []
        elif title is not None:
            found[title].append(line)
    return found


def flags_in(lines):
    return [m.group(1) for m in map(ENTRY.match, lines) if m]


def test_every_defined_flag_is_in_exactly_one_group():
    table = [name for _, names in FLAG_GROUPS for name in names]
    assert len(table) == len(set(table)), 'a name is in two groups'
    for name in build_flags():
        holders = [title for title, names in FLAG_GROUPS if name in names]
        assert len(holders) == 1, '--%s is in %s' % (name, holders or 'no group')


def test_help_has_examples_first_then_the_groups():
    text = help_text()
    found = sections(text)
    titles = list(found)
    assert text.startswith('usage: python -m demo ')
    assert titles[0] == 'examples' and 'python -m demo --demo' in '\n'.join(found['examples'])
    entries = [name for title in titles for name in flags_in(found[title])]
    assert sorted(entries) == sorted(build_flags())      # each defined flag, once
    where = {name: title for title in titles for name in flags_in(found[title])}
    assert where['img_path'] == 'inputs' and where['out_folder'] == 'outputs'
    assert where['backend'] == where['precision'] == 'speed'
    assert 'Ray' in where['engine'] and where['detect_faces'] == 'faces'
    assert where['batch_size'].startswith('compatibility')
    assert where['data_format'] == where['batch_size']
    assert titles.index('inputs') < titles.index('outputs') < titles.index(where['batch_size'])
    assert '--flagfile' not in text and '--undefok' not in text and 'absl' not in text
    img_path = '\n'.join(found['inputs'])
    assert '.csv' in img_path and '.parquet' in img_path
    assert max(len(line) for line in text.splitlines()) <= 100


def test_examples_are_commands_that_parse():
    commands = [line.strip() for line in sections(help_text())['examples']
                if line.strip().startswith('python -m demo')]
    assert len(commands) >= 5
    for command in commands:
        argv = shlex.split(command)[2:]               # 'demo' and its flags
        get_config(argv)                              # raises on an unknown flag or bad value


@pytest.mark.parametrize('ask', ['--help', '-h'])
def test_help_into_a_closed_pipe_is_quiet(ask):
    """`python -m demo --help | head -1`: the reader goes away; no traceback, status 0."""
    read_end, write_end = os.pipe()
    os.close(read_end)                                # every write now fails (EPIPE)
    try:
        proc = subprocess.run([sys.executable, '-m', 'demo', ask], cwd=ROOT, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == '', proc.stderr
