"""One training process per output directory.

Two processes writing one directory would interleave their logs and overwrite
each other's checkpoints. The lock is an operating-system lock on the file
``<out>/.lock`` (``flock`` on POSIX, ``msvcrt.locking`` on Windows), which
holds the owner's pid for the error message. The system releases it when the
process ends in any way — exit, crash, ``kill -9`` — so there is no stale lock
to take over and no race in taking one over. The file itself stays (deleting
it would let two processes lock two different files).
"""

from __future__ import annotations

import os

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
    import msvcrt

__all__ = ["RunLock", "acquire_run_lock"]

_HELD: dict = {}  # realpath of the lock file -> its open descriptor, for the locks this process holds


class RunLock:
    """A held lock; :meth:`release` (or leaving a ``with`` block) gives it up.
    Releasing twice is harmless."""

    def __init__(self, path):
        self.path = path
        self.released = False

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        fd = _HELD.pop(self.path, None)
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the OS lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _try_lock(fd) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return True
    except OSError:
        return False


def acquire_run_lock(out_dir) -> RunLock:
    """Claim ``out_dir`` for this process, or raise :class:`FileExistsError`
    naming the pid of the process that holds it (this one included: two
    trainers in one process may not share a folder either)."""
    path = os.path.realpath(os.path.join(os.fspath(out_dir), ".lock"))
    if path in _HELD:
        raise FileExistsError(f"{out_dir} is already being written by this process (another Trainer on the "
                              "same folder?); finish or release that one first")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if not _try_lock(fd):
        try:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
        except OSError:
            pid = "?"
        os.close(fd)
        raise FileExistsError(f"{out_dir} is being written by another training process (pid {pid}); "
                              "stop it first, or choose another --out")
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _HELD[path] = fd
    return RunLock(path)
