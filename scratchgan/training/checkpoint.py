"""Atomic writes, and checkpoints of any named modules and optimisers.

**Atomic writes.** Every file scratchgan writes — checkpoints, snapshots,
pictures, JSON — goes to a temporary file in the same directory first, is
flushed to disk, and is then renamed over its destination (``os.replace`` is
atomic), so a crash or a kill leaves the old file or the new one, never half
of one. A kill at the wrong moment can leave a ``.tmp-*`` file behind;
:func:`remove_stale_temporaries` clears them when a run starts.

**Checkpoints** are ``.npz`` files holding, under ``"<name>/<key>"``, every
module and optimiser a variant names (``G/0.W``, ``d_opt/buf/1.W:v``), plus
``format``, ``variant``, the run's configuration as JSON and the trainer's
counters. Format 1 (scratchgan 0.1, before the engine redesign) had the same
keys without ``format``; :func:`read_checkpoint` converts it (see
:func:`upgrade_v1`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import zipfile

import numpy as np

from ..backend import to_numpy

__all__ = ["FORMAT", "CheckpointError", "publish", "atomic_path", "atomic_savez", "atomic_write_text",
           "remove_stale_temporaries", "read_checkpoint", "save_checkpoint", "upgrade_v1"]

#: The checkpoint format this version writes.
FORMAT = 2


class CheckpointError(ValueError):
    """A file is not a readable scratchgan checkpoint; the message says why."""


def publish(tmp, path) -> None:
    """Move the finished temporary file ``tmp`` over ``path`` atomically, with
    the usual permissions (``mkstemp`` makes files readable by their owner only)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """``with atomic_path(p) as tmp:`` write ``tmp``; on success it replaces ``p``
    atomically, on any failure (Ctrl-C included) it is removed."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = suffix if suffix is not None else (os.path.splitext(path)[1] or ".tmp")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_savez(path, arrays: dict) -> None:
    """Write ``arrays`` (NumPy or CuPy) to ``path`` as ``.npz``, atomically and fsynced."""
    with atomic_path(path, ".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: to_numpy(v) for k, v in arrays.items()})
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def remove_stale_temporaries(directory) -> list:
    """Delete the ``.tmp-*`` files a killed writer left in ``directory``.
    Call it only while holding the directory's run lock. Returns their paths."""
    stale = glob.glob(os.path.join(os.fspath(directory), ".tmp-*"))
    for p in stale:
        with contextlib.suppress(OSError):
            os.remove(p)
    return stale


def read_checkpoint(path) -> dict:
    """The arrays of a checkpoint (or G snapshot) as a dict of host arrays.

    Raises :class:`CheckpointError` naming the file when it is missing, not an
    ``.npz`` archive (never falling back to pickle), or damaged. Format-1
    checkpoints are converted (:func:`upgrade_v1`).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a directory, not a checkpoint; did you mean "
                              f"{os.path.join(path, 'checkpoint.npz')}?")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a scratchgan checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as f:
            state = {k: f[k] for k in f.files}
    except Exception as err:
        raise CheckpointError(f"{path} is damaged or not a scratchgan checkpoint ({err})") from None
    if "format" not in state and "config" in state:
        state = upgrade_v1(state)
    fmt = int(state.get("format", FORMAT))
    if fmt > FORMAT:
        raise CheckpointError(f"{path} was written by a newer scratchgan (format {fmt}; this one reads "
                              f"up to {FORMAT}); upgrade scratchgan to read it")
    return state


def upgrade_v1(state: dict) -> dict:
    """Convert a format-1 checkpoint (scratchgan 0.1) in memory.

    The parameter and optimiser keys are unchanged. What differs:

    * checkpoints written before Maxout's columns became piece-major (no
      ``maxout_columns`` key) hold D's maxout weights, biases and their
      optimiser buffers in pylearn2's unit-major order: they are reordered;
    * the variant is implied by the configuration (``update``).

    The configuration itself is converted by :class:`~scratchgan.training.config.RunConfig`.
    """
    import json

    from ..nn.layers import Maxout

    state = dict(state)
    cfg = json.loads(str(state["config"]))
    state["format"] = np.asarray(1)
    if "maxout_columns" not in state:
        from ..presets import get_preset
        args = get_preset(cfg.get("preset", "paper")).model_args  # (model overrides, "extra", are refused)
        units, pieces = int(args["d_units"]), int(args["d_pieces"])
        maxouts = {str(2 * i + 1) for i in range(int(args["d_layers"]))}  # Dropout, Maxout, Dropout, …
        for key in list(state):
            net, _, name = key.partition("/")
            if net == "d_opt" and name.startswith("buf/"):
                name = name[len("buf/"):].split(":")[0]
            elif net != "D":
                continue
            index, _, param = name.partition(".")
            if index in maxouts and param in ("W", "b"):
                state[key] = Maxout.from_unit_major(np.asarray(state[key]), units, pieces)
        state["maxout_columns"] = np.asarray("piece-major")
    return state


def save_checkpoint(path, gan, **extra) -> None:
    """Write every module and optimiser of ``gan`` and the ``extra`` arrays to
    ``path``, atomically."""
    state = gan.state_dict()
    state.update(format=np.asarray(FORMAT), variant=np.asarray(gan.variant))
    state.update({k: np.asarray(v) for k, v in extra.items()})  # (keys may hold "/": fixed/z)
    atomic_savez(path, state)
