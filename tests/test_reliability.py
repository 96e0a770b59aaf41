"""Reliability: atomic writes under SIGKILL (the unnamed O_TMPFILE file and the mkstemp fallback), two
processes filling one download cache at once, and the O(d²) memory of streaming statistics.

The writers run in subprocesses killed mid-write.  They import only the ganmetrics modules they use, not
``ganmetrics/__init__`` (which loads torch and every metric), so that those not needing torch start in a
fraction of a second.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import ganmetrics
from ganmetrics import atomic
from ganmetrics.atomic import atomic_write
from ganmetrics.stats import FeatureStats, load_stats
from ganmetrics.train.checkpoint import load_training_checkpoint, save_training_checkpoint

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL, O_TMPFILE and /proc: Linux")

#: Prepended to every subprocess: a bare ``ganmetrics`` package object, so ``import ganmetrics.X`` loads X
#: (and what X imports) without running ``ganmetrics/__init__.py``.
PRELUDE = (
    "import sys, types\n"
    "_package = types.ModuleType('ganmetrics')\n"
    f"_package.__path__ = [{str(Path(ganmetrics.__file__).parent)!r}]\n"
    "sys.modules['ganmetrics'] = _package\n"
)
WRITING = "writing"  # what a writer prints once part of its data is written, before it sleeps


def names(folder: Path) -> list[str]:
    """Everything in ``folder``, hidden files included."""
    return sorted(os.listdir(folder))


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen]]:
    """``spawn(code, *args)``: run ``PRELUDE + code`` in a new interpreter; killed at teardown if still alive."""
    procs: list[subprocess.Popen] = []

    def start(code: str, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", PRELUDE + textwrap.dedent(code), *map(str, args)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def wait_for_line(proc: subprocess.Popen, line: str = WRITING, timeout: float = 120.0) -> None:
    """Read ``proc``'s stdout up to ``line``; fail with its stderr if it ends or times out first."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0 and select.select([proc.stdout], [], [], left)[0]:
        got = proc.stdout.readline()
        if got.strip() == line:
            return
        if not got:  # EOF: it exited
            break
    proc.kill()
    _, err = proc.communicate()
    pytest.fail(f"the subprocess did not print {line!r} (exit code {proc.returncode}):\n{err}")


def sigkill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.fixture
def unnamed_files(tmp_path) -> None:
    """Skip where tmp_path's file system cannot create unnamed (O_TMPFILE) files."""
    if not atomic._tmpfile_supported():
        pytest.skip("no O_TMPFILE or /proc here")
    try:
        os.close(os.open(tmp_path, os.O_TMPFILE | os.O_WRONLY, 0o600))
    except OSError as exc:
        pytest.skip(f"the file system of {tmp_path} refuses O_TMPFILE ({exc})")


@pytest.fixture(params=["unnamed", "mkstemp"])
def write_path(request, monkeypatch) -> str:
    """Run the test with atomic_write's O_TMPFILE path, then with its mkstemp fallback."""
    if request.param == "unnamed":
        request.getfixturevalue("unnamed_files")
    else:
        monkeypatch.setattr(atomic, "_tmpfile_supported", lambda: False)
    return request.param


# --- atomic_write's contract on both paths ---------------------------------------------------------


def test_permissions_like_plain_open(tmp_path, write_path):
    fresh, existing = tmp_path / "fresh.txt", tmp_path / "existing.txt"
    existing.write_text("old")
    existing.chmod(0o640)
    for path in (fresh, existing):
        with atomic_write(path, "w") as handle:
            handle.write("new")
    umask = atomic._umask()
    assert fresh.stat().st_mode & 0o7777 == 0o666 & ~umask
    assert existing.stat().st_mode & 0o7777 == 0o640
    assert fresh.read_text() == existing.read_text() == "new"
    assert names(tmp_path) == ["existing.txt", "fresh.txt"]


def test_error_keeps_old_file_and_leaves_nothing(tmp_path, write_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(dest) as handle:
        handle.write(b"half of the new data")
        raise RuntimeError("boom")
    assert dest.read_bytes() == b"old"
    assert names(tmp_path) == ["data.bin"]


def test_refused_link_falls_back_to_a_copy(tmp_path, unnamed_files, monkeypatch):
    """Where naming an unnamed file fails (EXDEV ...), its data is copied to a named temporary file."""
    monkeypatch.setattr(atomic, "_link_refused", set())

    def refuse(*args, **kwargs):
        raise OSError(errno.EXDEV, "linkat refused")

    monkeypatch.setattr(os, "link", refuse)
    data = os.urandom(3 * atomic._CHUNK + 17)
    dest = tmp_path / "data.bin"
    with atomic_write(dest) as handle:
        handle.write(data)
    assert dest.read_bytes() == data
    assert names(tmp_path) == ["data.bin"]
    assert atomic._link_refused == {tmp_path.stat().st_dev}  # later writes there skip O_TMPFILE
    folder = os.open(tmp_path, os.O_RDONLY)
    try:
        assert atomic._open_unnamed(folder) is None
    finally:
        os.close(folder)


# --- SIGKILL mid-write: the old file stays, nothing else appears -----------------------------------


def kill_mid_write(spawn, code: str, dest: Path) -> None:
    """Run writer ``code`` (``sys.argv[1]`` = ``dest``), SIGKILL it mid-write, check no file appeared."""
    before = names(dest.parent)
    proc = spawn(code, dest)
    wait_for_line(proc)
    assert names(dest.parent) == before  # while it writes, its data is in an unnamed file
    sigkill(proc)
    assert names(dest.parent) == before


RAW_WRITER = """
    import sys, time
    from ganmetrics.atomic import atomic_write
    with atomic_write(sys.argv[1]) as handle:
        handle.write(b"n" * (16 << 20))
        handle.flush()
        print("writing", flush=True)
        time.sleep(120)
        handle.write(b"n" * (16 << 20))
"""


def test_sigkill_raw_write(tmp_path, spawn, unnamed_files):
    dest = tmp_path / "data.bin"
    old = os.urandom(1 << 20)
    dest.write_bytes(old)
    kill_mid_write(spawn, RAW_WRITER, dest)
    assert dest.read_bytes() == old


STATS_WRITER = """
    import sys, time
    import numpy as np
    from ganmetrics.stats import FeatureStats

    real_savez = np.savez

    def slow_savez(file, **arrays):
        real_savez(file, **arrays)
        file.flush()
        print("writing", flush=True)
        time.sleep(120)

    np.savez = slow_savez
    stats = FeatureStats(512)
    stats.update(np.random.default_rng(1).standard_normal((600, 512)))
    stats.save(sys.argv[1])
"""


def test_sigkill_feature_stats_save(tmp_path, spawn, unnamed_files):
    old_stats = FeatureStats(512)
    old_stats.update(np.random.default_rng(0).standard_normal((600, 512)))
    dest = old_stats.save(tmp_path / "stats.npz")
    old = dest.read_bytes()
    kill_mid_write(spawn, STATS_WRITER, dest)
    assert dest.read_bytes() == old
    np.testing.assert_array_equal(load_stats(dest).sigma, old_stats.sigma)


CHECKPOINT_WRITER = """
    import sys, time
    import torch
    from ganmetrics.train.checkpoint import save_training_checkpoint

    real_save = torch.save

    def slow_save(obj, file, *args, **kwargs):
        real_save(obj, file, *args, **kwargs)
        file.flush()
        print("writing", flush=True)
        time.sleep(120)

    torch.save = slow_save
    save_training_checkpoint(sys.argv[1], {"step": 2, "weights": torch.full((1 << 21,), 2.0)})
"""


def test_sigkill_training_checkpoint(tmp_path, spawn, unnamed_files):
    dest = tmp_path / "checkpoint.pt"
    save_training_checkpoint(dest, {"step": 1, "weights": torch.ones(1 << 21)})
    old = dest.read_bytes()
    kill_mid_write(spawn, CHECKPOINT_WRITER, dest)
    assert dest.read_bytes() == old
    assert load_training_checkpoint(dest)["step"] == 1


# --- the mkstemp fallback: a dead writer's file is removed by the next write ------------------------


FALLBACK_WRITER = """
    import sys, time
    from ganmetrics import atomic
    atomic._tmpfile_supported = lambda: False  # the mkstemp fallback
    with atomic.atomic_write(sys.argv[1]) as handle:
        handle.write(b"n" * (4 << 20))
        handle.flush()
        print("writing", flush=True)
        time.sleep(120)
"""


def test_fallback_next_write_removes_a_killed_writers_file(tmp_path, spawn, monkeypatch):
    monkeypatch.setattr(atomic, "_tmpfile_supported", lambda: False)
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"old")
    proc = spawn(FALLBACK_WRITER, dest)
    wait_for_line(proc)
    temps = [name for name in names(tmp_path) if name != dest.name]
    assert len(temps) == 1 and re.fullmatch(rf"\.data\.bin\.{proc.pid}\.[a-z0-9_]{{8}}\.tmp", temps[0]), temps

    # A live writer's file is left alone, also when its pid looks dead (as from another pid namespace):
    # the flock it holds says it is in use.
    with atomic_write(dest) as handle:
        handle.write(b"mine")
    assert names(tmp_path) == sorted([dest.name, *temps])
    pid_alive = atomic._pid_alive
    monkeypatch.setattr(atomic, "_pid_alive", lambda pid: False)
    with atomic_write(dest) as handle:
        handle.write(b"mine again")
    assert names(tmp_path) == sorted([dest.name, *temps])
    monkeypatch.setattr(atomic, "_pid_alive", pid_alive)

    sigkill(proc)
    assert names(tmp_path) == sorted([dest.name, *temps])  # the fallback cannot avoid the leftover...
    assert dest.read_bytes() == b"mine again"
    with atomic_write(dest) as handle:  # ...the next write to the destination removes it
        handle.write(b"new")
    assert names(tmp_path) == [dest.name]
    assert dest.read_bytes() == b"new"


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    result = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                            text=True, check=True)
    return int(result.stdout)


def test_sweep_removes_only_dead_writers_files_of_the_destination(tmp_path, write_path):
    """Also on the O_TMPFILE path, which leaves a named file if killed between its link and rename."""
    dest, pid = tmp_path / "data.bin", dead_pid()
    leftover = tmp_path / f".data.bin.{pid}.abc_0123.tmp"
    kept = [f".other.bin.{pid}.abc_0123.tmp",  # another destination's
            f".data.bin.{os.getpid()}.abc_0123.tmp",  # a live process's (this one's)
            ".data.bin.abc_0123.tmp",  # not in the pid format
            f".data.bin.{pid}.abc_0123.tmp.bak"]
    for name in [leftover.name, *kept]:
        (tmp_path / name).write_bytes(b"half")
    with atomic_write(dest) as handle:
        handle.write(b"new")
    assert names(tmp_path) == sorted([dest.name, *kept])


def test_writing_many_files_scans_the_folder_once(tmp_path, write_path, monkeypatch):
    """Writing N files into one folder must not list it N times (O(N²) entries); it rescans after a change."""
    scans = []
    scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: scans.append(path) or scandir(path))
    for index in range(20):
        with atomic_write(tmp_path / f"{index:03d}.png") as handle:
            handle.write(b"png")
    assert len(scans) == 1
    pid = dead_pid()
    time.sleep(0.05)  # a change within the clock tick of the last write could keep the folder's mtime
    leftover = tmp_path / f".005.png.{pid}.abcdefgh.tmp"
    leftover.write_bytes(b"half")  # another process changes the folder
    with atomic_write(tmp_path / "005.png") as handle:
        handle.write(b"png")
    assert len(scans) == 2
    assert not leftover.exists()


# --- two processes filling the same download cache at once ------------------------------------------


DOWNLOADER = """
    import sys
    from ganmetrics import atomic, weights
    url, dest, sha256, path = sys.argv[1:]
    if path == "mkstemp":
        atomic._tmpfile_supported = lambda: False
    weights.download(url, dest, sha256, progress=False, timeout=60)
"""


def test_two_processes_download_to_one_cache(tmp_path, loopback_server, spawn, write_path):
    blob = os.urandom(4 << 20)
    sha256 = hashlib.sha256(blob).hexdigest()
    # 4 MiB in 64 chunks, 5 ms apart; both answers wait until both requests have arrived.
    url = loopback_server.serve("file.pth", blob, chunk_size=1 << 16, delay=0.005, together=2)
    dest = tmp_path / "cache" / "file.pth"
    procs = [spawn(DOWNLOADER, url, dest, sha256, write_path) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert loopback_server.requests == ["/file.pth", "/file.pth"]
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == sha256
    assert names(dest.parent) == ["file.pth"]


# --- memory: streaming statistics stay O(d²) ---------------------------------------------------------


STREAM_STATS = """
    import resource, sys
    import numpy as np
    import torch
    from ganmetrics.stats import FeatureStats

    torch.set_num_threads(1)
    n, d, batch = int(sys.argv[1]), 2048, 500
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux: interpreter, torch, numpy
    rng = np.random.default_rng(0)
    stats = FeatureStats(d)
    for _ in range(n // batch):
        stats.update(rng.standard_normal((batch, d), dtype=np.float32))  # drawn on the fly, never all held
    assert stats.num_samples == n and stats.sigma.shape == (d, d)
    print(baseline, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.slow  # 45-60 s on two shared CPU cores: 50,000 × 2048² float64 multiply-adds, one thread
def test_streaming_statistics_memory_is_o_d_squared(spawn):
    d, mib = 2048, 1 << 20
    matrix = d * d * 8  # one d × d float64 matrix: 32 MiB
    procs = {n: spawn(STREAM_STATS, n) for n in (5_000, 50_000)}
    peaks, baselines = {}, {}
    for n, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        baseline_kib, peak_kib = map(int, out.split())
        baselines[n], peaks[n] = baseline_kib * 1024, peak_kib * 1024
    kept = 50_000 * d * 4  # what holding the float32 features would cost: 391 MiB
    figures = (f"peak RSS: N=5,000 {peaks[5_000] / mib:.0f} MiB, N=50,000 {peaks[50_000] / mib:.0f} MiB; "
               f"after imports {baselines[50_000] / mib:.0f} MiB; one d×d float64 matrix {matrix / mib:.0f} MiB; "
               f"keeping the features would add {kept / mib:.0f} MiB")
    assert peaks[50_000] - peaks[5_000] < 64 * mib, figures
    assert peaks[50_000] - baselines[50_000] < 8 * matrix, figures
