"""util.io.atomic.Staging / recover_staging: one image's outputs appear all together or not at all,
even when a rename fails partway or the process is killed between renames."""
import json
import os
import socket
import subprocess
import sys

import pytest

from output_sets import files_under
from util.io import atomic
from util.io.atomic import STAGING_FOLDER, Staging, recover_staging

CONTENTS = {'images/a.png': b'png', 'mesh/a.obj': b'obj', 'params/a.npy': b'npy',
            'texture/a.png': b'tex', 'texture/a.mtl': b'mtl', 'texture/a.obj': b'tobj'}


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_commit_writes_every_file_and_leaves_no_temporaries(tmp_path):
    with Staging(str(tmp_path)) as staging:
        staging.commit(CONTENTS)
    assert files_under(tmp_path) == sorted(CONTENTS)
    for rel, data in CONTENTS.items():
        assert (tmp_path / rel).read_bytes() == data


def test_blocked_final_path_writes_nothing(tmp_path):
    (tmp_path / 'texture' / 'a.obj').mkdir(parents=True)  # a folder where an output goes
    with Staging(str(tmp_path)) as staging, pytest.raises(IsADirectoryError):
        staging.commit(CONTENTS)
    assert files_under(tmp_path) == []
    assert not (tmp_path / STAGING_FOLDER).exists()


def test_rename_failing_partway_rolls_back_the_ones_done(tmp_path, monkeypatch):
    real, calls = os.replace, []

    def replace(src, dst, **kw):
        calls.append(dst)
        if len(calls) == 4:
            raise OSError(28, 'No space left on device')
        real(src, dst, **kw)

    monkeypatch.setattr(atomic.os, 'replace', replace)
    (tmp_path / 'images').mkdir()
    (tmp_path / 'images' / 'other.png').write_bytes(b'kept')
    with Staging(str(tmp_path)) as staging, pytest.raises(OSError, match='space'):
        staging.commit(CONTENTS)
    assert len(calls) == 4  # three renamed, then the failure
    assert files_under(tmp_path) == ['images/other.png']


def test_staged_files_are_moved_with_the_contents_and_rolled_back_with_them(tmp_path,
                                                                          monkeypatch):
    """Files written ahead into the staging folder (a clip's video and meshes) join the
    commit: all in place together, or none (and the staged files gone)."""
    with Staging(str(tmp_path)) as staging:
        video, mesh = staging.new_file('.mp4'), staging.new_file('.obj')
        assert video != mesh and os.path.samefile(os.path.dirname(video), staging.folder)
        open(video, 'wb').write(b'mp4')
        open(mesh, 'wb').write(b'obj')
        staging.commit({'params/c.npz': b'npz'}, {'video/c.mp4': video, 'mesh/c/000003.obj': mesh})
    assert files_under(tmp_path) == ['mesh/c/000003.obj', 'params/c.npz', 'video/c.mp4']
    assert (tmp_path / 'video' / 'c.mp4').read_bytes() == b'mp4'

    out = tmp_path / 'second'
    real = os.replace

    def replace(src, dst, **kw):
        if dst.endswith('000003.obj'):
            raise OSError(28, 'No space left on device')
        real(src, dst, **kw)

    monkeypatch.setattr(atomic.os, 'replace', replace)
    with Staging(str(out)) as staging, pytest.raises(OSError, match='space'):
        video, mesh = staging.new_file('.mp4'), staging.new_file('.obj')
        open(video, 'wb').write(b'mp4')
        open(mesh, 'wb').write(b'obj')
        try:
            staging.commit({'params/c.npz': b'npz'}, {'video/c.mp4': video,
                                                       'mesh/c/000003.obj': mesh})
        finally:
            assert not os.path.exists(video) and not os.path.exists(mesh)
    assert files_under(out) == []


def killed_commit(out, renamed):
    """Leave what a process killed during Staging.commit leaves: its staging folder (of a dead
    pid, on this host) with the journal, the first ``renamed`` outputs already in place and the
    other temporaries not yet renamed."""
    folder = out / STAGING_FOLDER / ('%s@%d-0123456789ab' % (socket.gethostname(), dead_pid()))
    folder.mkdir(parents=True)
    pairs = []  # (temporary in the staging folder, output relative to OUT)
    for k, (rel, data) in enumerate(CONTENTS.items()):
        tmp, final = folder / ('0.%d.tmp' % k), out / rel
        final.parent.mkdir(exist_ok=True)
        (final if k < renamed else tmp).write_bytes(data)
        pairs.append((tmp.name, rel))
    (folder / '0.journal').write_text(json.dumps(pairs))


def test_killed_commit_is_undone_by_the_next_run(tmp_path):
    """A process killed between two renames leaves a journal; the next run undoes the commit."""
    killed_commit(tmp_path, renamed=2)
    (tmp_path / 'images' / 'b.png').write_bytes(b'complete earlier output')
    assert recover_staging(str(tmp_path)) == 1
    assert files_under(tmp_path) == ['images/b.png']


def test_completed_commit_with_a_stale_journal_is_kept(tmp_path):
    """Every rename done, killed before the journal was removed: the set stays."""
    killed_commit(tmp_path, renamed=len(CONTENTS))
    recover_staging(str(tmp_path))
    assert files_under(tmp_path) == sorted(CONTENTS)


def test_live_or_foreign_staging_folders_are_left_alone(tmp_path):
    mine = tmp_path / STAGING_FOLDER / ('%s@%d-0123456789ab' % (socket.gethostname(), os.getpid()))
    other_host = tmp_path / STAGING_FOLDER / ('some-other-host@%d-0123456789ab' % dead_pid())
    for folder in (mine, other_host):
        folder.mkdir(parents=True)
        (folder / '0.0.tmp').write_bytes(b'in flight')
    assert recover_staging(str(tmp_path)) == 0
    assert (mine / '0.0.tmp').exists() and (other_host / '0.0.tmp').exists()


def test_check_writable_names_a_file_in_the_way_as_a_file(tmp_path):
    """An output path that is a file (or lies under one) is not called a folder."""
    from util.io.atomic import check_writable
    blocker = tmp_path / 'results.txt'
    blocker.write_text('a file')
    with pytest.raises(OSError) as caught:
        check_writable(str(blocker))
    assert str(caught.value) == ('%s: cannot write outputs there: it is a file, not a folder'
                                 % blocker)
    with pytest.raises(OSError) as caught:
        check_writable(str(blocker / 'run1' / 'out'))
    assert str(caught.value) == ('%s: cannot write outputs there: %s is a file, not a folder'
                                 % (blocker / 'run1' / 'out', blocker))
    assert blocker.read_text() == 'a file'
    check_writable(str(tmp_path / 'new' / 'out'))                  # a new folder is made
    assert (tmp_path / 'new' / 'out').is_dir() and os.listdir(tmp_path / 'new' / 'out') == []


def test_write_files_never_goes_through_a_link(tmp_path):
    """util.io.atomic.write_files (the run report): a sub-folder that is a link is refused,
    a file that is a link is replaced, not written through, and pruning removes links
    themselves, never what they name."""
    from util.io.atomic import write_files
    from util.io.no_follow import LinkInside
    out, elsewhere = tmp_path / 'out', tmp_path / 'elsewhere'
    out.mkdir()
    elsewhere.mkdir()
    (elsewhere / 'keep.txt').write_text('precious')
    os.symlink(str(elsewhere), str(out / 'report'))
    with pytest.raises(LinkInside, match='report: is a symbolic link'):
        write_files(str(out), [('report/a.js', b'a')])
    assert sorted(os.listdir(elsewhere)) == ['keep.txt']
    os.remove(str(out / 'report'))
    os.symlink(str(elsewhere / 'keep.txt'), str(out / 'page.html'))
    with pytest.raises(LinkInside, match='page.html: is a symbolic link'):
        write_files(str(out), [('page.html', b'<html>')])
    assert (elsewhere / 'keep.txt').read_text() == 'precious'
    (out / 'report' / 'old').mkdir(parents=True)
    os.symlink(str(elsewhere), str(out / 'report' / 'old' / 'link'))
    os.symlink(str(elsewhere / 'keep.txt'), str(out / 'report' / 'file-link'))
    assert write_files(str(out), [('report/new.js', b'n')], prune=['report']) == 1
    assert files_under(out / 'report') == ['new.js']  # the link to a file removed, itself
    assert (out / 'report' / 'old' / 'link').is_symlink()  # one to a folder is left as it is
    assert sorted(os.listdir(elsewhere)) == ['keep.txt']
    assert (elsewhere / 'keep.txt').read_text() == 'precious'
