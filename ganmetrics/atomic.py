"""Atomic file writes that leave nothing behind, even when the writer is killed with SIGKILL.

Guarantee, for a destination ``D`` and a writer that may die at any instant (an exception, SIGKILL, or a
power cut once the data reached the disk):

* ``D`` is the complete old file or the complete new one, never a prefix of the new data: the new
  data gets the name ``D`` only through one :func:`os.replace` (``rename(2)``, atomic on POSIX and
  Windows), after ``write → flush → fsync(file)``; ``fsync(folder)`` follows, so the rename itself
  survives a crash.
* No file outlives its writer.  On Linux the data goes to an *unnamed* file,
  ``open(folder, O_TMPFILE)``: an inode with link count 0, which the kernel frees when its last
  descriptor closes, as a killed process's descriptors do.  It is named only at the end,

      ``linkat(/proc/self/fd/N → .D.<pid>.<random>.tmp)``, then ``rename(.D.<pid>.<random>.tmp → D)``,

  so a killed writer can leave a named file only from inside those two metadata operations.  (Where
  ``linkat`` is refused the data is copied to such a named file instead, and that file system uses the
  fallback from then on.)
* Where there is no ``O_TMPFILE`` (other systems; file systems that refuse it, such as NFS; no
  ``/proc``) the data goes to the ``mkstemp`` file ``.D.<pid>.<random>.tmp``, renamed over ``D``.  A
  killed writer leaves that file; the next :func:`atomic_write` to ``D``, in any process, deletes it,
  as every write first sweeps ``.D.<pid>.<random>.tmp`` whose ``kill(pid, 0)`` fails with ``ESRCH``
  and whose ``flock`` (held by every writer on its temporary file) is free; the lock protects a live
  writer whose pid only looks dead, as from another pid namespace.  The sweep also removes files
  left inside the two-operation window above.  A process skips the folder scan while the folder is
  unchanged since it last found no temporary file there.  On Windows, where liveness is not checked,
  nothing is swept.

On any error the temporary file is removed and the old ``D`` is left as it was.  The result has the
permissions a plain ``open(D, "w")`` would give it (``0o666`` less the umask; an existing file keeps
its mode), not the owner-only mode of the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import InputError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

_O_TMPFILE: int | None = getattr(os, "O_TMPFILE", None)
_PROC_FD = "/proc/self/fd"
#: errno values meaning "this kernel or file system cannot create unnamed files": use the fallback.
_NO_TMPFILE_ERRNOS = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.EISDIR, errno.EINVAL})
#: The random part of a temporary name: mkstemp's alphabet and length, for both kinds of temp file.
_RANDOM_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp")
#: Folders whose last sweep found no temporary file of ours, with their ``(st_dev, st_ino,
#: st_mtime_ns)`` after this process's last write there: while unchanged, the sweep skips the scan,
#: so writing N files into one folder costs O(N) and not O(N²) directory entries.
_clean_folders: dict[str, tuple[int, int, int]] = {}
#: Devices (``st_dev``) where naming an unnamed file failed: later writes there use ``mkstemp`` at once.
_link_refused: set[int] = set()
_CHUNK = 1 << 20


def _umask() -> int:
    """The process umask (read by setting and restoring it: fine outside threads that create files)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _final_mode(dest: Path) -> int:
    """The existing file's mode, else what ``open(dest, "w")`` would create (0o666 less the umask)."""
    try:
        return dest.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _tmpfile_supported() -> bool:
    """Whether unnamed files can be tried here (``O_TMPFILE`` plus ``/proc/self/fd`` to name them)."""
    return _O_TMPFILE is not None and os.path.isdir(_PROC_FD)


def _temp_name(name: str) -> str:
    """A fresh ``.name.<pid>.<random>.tmp`` (whoever creates it checks that it is unused)."""
    random = "".join(secrets.choice(_RANDOM_CHARS) for _ in range(8))
    return f".{name}.{os.getpid()}.{random}.tmp"


def _lock(fd: int) -> None:
    """Hold an exclusive ``flock`` on ``fd`` until it closes: marks the temporary file as in use."""
    if fcntl is not None:
        with contextlib.suppress(OSError):  # a file system without locks: the pid check alone decides
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _pid_alive(pid: int) -> bool:
    """False only when no process ``pid`` exists (``kill(pid, 0)`` → ESRCH); always True on Windows."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: it exists, under another user; or no valid pid: not ours
        return True
    return True


def _remove_if_abandoned(path: str) -> bool:
    """Delete ``path`` unless a process holds its lock; True when it is gone."""
    if fcntl is None:  # no way to tell whether it is in use
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return True
    except OSError:  # not ours to open (another user): leave it
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer holds it
        except OSError:
            pass  # no locks on this file system: the dead pid decides
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:  # e.g. another user's file in a sticky folder
            return False
        return True
    finally:
        os.close(fd)


def _folder_state(folder: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns


def _sweep(folder: Path, name: str) -> bool:
    """Delete the dead writers' ``.name.<pid>.<random>.tmp`` siblings; True when no temp file of ours is left.

    Skips the scan when the folder has not changed since this process last found it clean.
    """
    key = os.fspath(folder)
    state = _folder_state(folder)
    if state is not None and _clean_folders.get(key) == state:
        return True
    clean = True
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                match = _TEMP_NAME.fullmatch(entry.name)
                if match is None:
                    continue
                if (match["name"] == name and entry.is_file(follow_symlinks=False)
                        and not _pid_alive(int(match["pid"])) and _remove_if_abandoned(entry.path)):
                    continue
                clean = False
    except OSError:
        clean = False
    if clean and state is not None:
        _clean_folders[key] = _folder_state(folder) or state
    else:
        _clean_folders.pop(key, None)
    return clean


def _open_folder(folder: Path) -> int | None:
    """A descriptor of ``folder`` to link and fsync in, or None where folders cannot be opened (Windows)."""
    if os.name == "nt":
        return None
    try:
        return os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:  # e.g. a folder we may write but not read
        return None


def _fsync_folder(dfd: int | None) -> None:
    """Make a rename in the folder ``dfd`` durable (no-op without a descriptor or where refused)."""
    if dfd is not None:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on a folder (EINVAL)
            os.fsync(dfd)


def _open_unnamed(dfd: int | None) -> int | None:
    """An unnamed file (``O_TMPFILE``) in the folder ``dfd``, or None where unsupported."""
    if dfd is None or not _tmpfile_supported() or os.fstat(dfd).st_dev in _link_refused:
        return None
    try:
        # O_RDWR, not O_WRONLY: if naming it is refused, its data can still be copied (_write_unnamed).
        return os.open(".", _O_TMPFILE | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600, dir_fd=dfd)
    except OSError as exc:
        if exc.errno in _NO_TMPFILE_ERRNOS:
            return None
        raise


def _fdopen(fd: int, mode: str) -> IO:
    """``os.fdopen`` that closes ``fd`` when it fails (a bad ``mode``)."""
    try:
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def _name_unnamed(fd: int, dfd: int, name: str) -> str:
    """Link the unnamed file ``fd`` under a fresh ``.name.<pid>.<random>.tmp`` in the folder ``dfd``."""
    for _ in range(100):
        tmp_name = _temp_name(name)
        try:
            # linkat(AT_FDCWD, "/proc/self/fd/N", dfd, tmp_name, AT_SYMLINK_FOLLOW).  dst_dir_fd matters:
            # without it CPython < 3.14 calls link(), which links the /proc symlink itself (EXDEV), gh-81793.
            os.link(f"{_PROC_FD}/{fd}", tmp_name, dst_dir_fd=dfd, follow_symlinks=True)
        except FileExistsError:
            continue
        return tmp_name
    raise FileExistsError(errno.EEXIST, "no unused temporary name", f".{name}.{os.getpid()}.*.tmp")


def _mkstemp(folder: Path, name: str) -> tuple[int, str]:
    """A new, locked ``folder/.name.<pid>.<random>.tmp``: its descriptor and path."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    _lock(fd)
    return fd, tmp_name


def _copy_fd(src: int, dst: int) -> None:
    """Copy the whole file ``src`` into ``dst`` (positioned reads; ``src``'s offset is left alone)."""
    offset = 0
    while chunk := os.pread(src, _CHUNK, offset):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view):]
        offset += len(chunk)


@contextlib.contextmanager
def _write_unnamed(fd: int, dfd: int, dest: Path, mode: str) -> Iterator[IO]:
    """Write through the unnamed file ``fd``; name it ``.name.<pid>.<random>.tmp``, rename that over ``dest``."""
    _lock(fd)
    tmp_name: str | None = None
    copy_fd: int | None = None
    try:
        with _fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(fd)
            os.fchmod(fd, _final_mode(dest))
            try:
                tmp_name = os.path.join(dest.parent, _name_unnamed(fd, dfd, dest.name))
            except FileExistsError:
                raise
            except OSError:  # naming unnamed files is refused here: copy it, and skip O_TMPFILE from now on
                _link_refused.add(os.fstat(dfd).st_dev)
                copy_fd, tmp_name = _mkstemp(dest.parent, dest.name)
                _copy_fd(fd, copy_fd)
                os.fsync(copy_fd)
                os.fchmod(copy_fd, _final_mode(dest))
            os.replace(tmp_name, dest)
            tmp_name = None
    except BaseException:
        if tmp_name is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
        raise
    finally:
        if copy_fd is not None:
            os.close(copy_fd)


@contextlib.contextmanager
def _write_named(dest: Path, mode: str) -> Iterator[IO]:
    """The fallback: write a ``.name.<pid>.<random>.tmp`` sibling, rename it over ``dest``."""
    fd, tmp_name = _mkstemp(dest.parent, dest.name)
    try:
        replaced = False
        with _fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(fd)
            os.chmod(tmp_name, _final_mode(dest))
            if fcntl is not None:  # POSIX: rename while still holding the lock
                os.replace(tmp_name, dest)
                replaced = True
        if not replaced:  # Windows renames closed files only
            os.replace(tmp_name, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a file to write ``path``'s new content; it replaces ``path`` atomically on success.

    On an error nothing changes; a killed writer leaves nothing behind (see the module docstring).
    """
    dest = Path(path)
    folder = dest.parent
    folder.mkdir(parents=True, exist_ok=True)
    clean = _sweep(folder, dest.name)
    dfd = _open_folder(folder)
    try:
        fd = _open_unnamed(dfd)
        writer = _write_named(dest, mode) if fd is None else _write_unnamed(fd, dfd, dest, mode)
        try:
            with writer as handle:
                yield handle
        except BaseException:
            _clean_folders.pop(os.fspath(folder), None)
            raise
        _fsync_folder(dfd)
    finally:
        if dfd is not None:
            os.close(dfd)
    if clean:
        state = _folder_state(folder)
        if state is not None:
            _clean_folders[os.fspath(folder)] = state


def check_writable(path: str | os.PathLike, *, what: str, folder: bool = False) -> Path:
    """Fail fast, before hours of work, when ``path`` cannot be written: an existing folder where a file goes (or a
    file where a folder goes), a parent that is a file, or a place where no file can be created (read-only,
    permissions).  Creates nothing that stays: missing parent folders are created only by the real write.
    ``what`` names the argument in error messages (``"-o"``, ``"--curve"``).  Returns ``path`` as a Path."""
    dest = Path(path).expanduser()
    if dest.exists() and dest.is_dir() != folder:
        kind = "an existing folder" if dest.is_dir() else "an existing file"
        raise InputError(f"{what} {dest}: {kind}, but a {'folder' if folder else 'file'} is written there; "
                         "choose another path")
    parent = dest if folder and dest.is_dir() else dest.parent
    while not parent.exists():  # the nearest existing ancestor is where creation starts
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{what} {dest}: {parent} is a file, not a folder; choose another path")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        raise InputError(f"{what} {dest}: cannot create files in {parent} ({e.strerror or e}); choose a writable "
                         "place") from None
    return dest
