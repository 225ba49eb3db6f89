"""The judge: a small convolutional classifier that scores generated images.

The field judges samples in the feature space of a trained network (docs/evaluation.md §2; FID,
Inception score, precision and recall). Inception-v3 needs PyTorch and a
download; scratchgan trains its own judge with its own engine, one per
dataset, and ships the weights with the package so that every user's numbers
come from the same features (``scripts/train_judge.py`` rebuilds them).

Architecture, for ``(N, 1, 28, 28)`` images in [0, 1]::

    Conv 3×3 → 32, ReLU                        28×28
    Conv 4×4 s2 p1 → 32, ReLU                  14×14
    Conv 3×3 p1 → 64, ReLU                     14×14
    Conv 4×4 s2 p1 → 64, ReLU                   7×7
    Conv 3×3 s2 p1 → 64, ReLU                   4×4
    Flatten → Linear 1024 → 128, ReLU          the 128 features (FID, precision/recall)
    Dropout 0.3 → Linear 128 → 10              class logits (Inception score, label accuracy)

about 270,000 parameters. The weights are stored as float16 (0.5 MB per judge)
in ``scratchgan/judges/<dataset>.f16`` with their shapes and SHA-256 in
``scratchgan/judges/judges.json``; loading checks the checksum.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import numpy as np

from .. import nn
from ..nn import fast

__all__ = ["build_judge", "load_judge", "judge_manifest", "JudgeError", "Judge", "save_judge_weights"]

#: where the shipped weights live, inside the package
WEIGHTS = resources.files("scratchgan") / "judges"


class JudgeError(RuntimeError):
    """The judge's weights are missing, damaged or do not match the manifest."""


class Judge(nn.Module):
    """``trunk`` (images → 128 features) then ``head`` (features → 10 logits)."""

    def __init__(self, trunk, head):
        super().__init__()
        self.trunk, self.head = trunk, head

    def children(self):
        return [("trunk", self.trunk), ("head", self.head)]

    def forward(self, x, train=True):
        """Parameters: x (N, 1, 28, 28). Returns: logits (N, 10)."""
        self._cache = True
        return self.head.forward(self.trunk.forward(x, train=train), train=train)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        self._cached()
        return self.trunk.backward(self.head.backward(dy, param_grads=param_grads), need_dx=need_dx,
                                   param_grads=param_grads)

    def features(self, x):
        """Parameters: x (N, 1, 28, 28). Returns: the 128 penultimate features (N, 128), evaluation mode."""
        return self.trunk.forward(x, train=False)

    def output_shape(self, input_shape):
        return self.head.output_shape(self.trunk.output_shape(input_shape))


def build_judge(rng=None, *, fast_layers=True, dtype=np.float32) -> Judge:
    """A freshly initialised judge (He-normal convolutions and Linear layers)."""
    L = fast if fast_layers else nn
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    kw = dict(rng=rng, dtype=dtype)
    trunk = L.Sequential([
        L.Conv2d(1, 32, 3, padding=1, **kw), L.ReLU(),
        L.Conv2d(32, 32, 4, stride=2, padding=1, **kw), L.ReLU(),
        L.Conv2d(32, 64, 3, padding=1, **kw), L.ReLU(),
        L.Conv2d(64, 64, 4, stride=2, padding=1, **kw), L.ReLU(),
        L.Conv2d(64, 64, 3, stride=2, padding=1, **kw), L.ReLU(),
        L.Flatten(), L.Linear(64 * 4 * 4, 128, init="he", **kw), L.ReLU(),
    ])
    head = L.Sequential([L.Dropout(0.3), L.Linear(128, 10, init="glorot", **kw)])
    return Judge(trunk, head)


def judge_manifest() -> dict:
    """The shipped judges: ``{dataset: {"sha256", "arrays", "test_accuracy", …}}``."""
    path = WEIGHTS / "judges.json"
    if not path.is_file():
        raise JudgeError(f"no judge manifest at {path}; rebuild it with scripts/train_judge.py")
    return json.loads(path.read_text())


def save_judge_weights(judge: Judge, dataset: str, directory, **info) -> dict:
    """Write ``judge``'s parameters as float16 to ``<directory>/<dataset>.f16``
    and return its manifest entry (shapes, SHA-256, ``info``)."""
    import os

    from ..training.checkpoint import atomic_path

    state = judge.state_dict()
    blob = b"".join(np.ascontiguousarray(state[k], dtype="<f2").tobytes() for k in state)
    path = os.path.join(os.fspath(directory), f"{dataset}.f16")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(blob)
    return {"file": f"{dataset}.f16", "sha256": hashlib.sha256(blob).hexdigest(),
            "arrays": [[k, list(state[k].shape)] for k in state], **info}


def load_judge(dataset: str = "mnist", device="cpu") -> Judge:
    """The shipped judge of ``dataset`` ("mnist" or "fashion-mnist"), in
    evaluation use, float32, on ``device``. The file's SHA-256 must match the
    manifest: every user's features come from the same weights."""
    from ..backend import get_device
    from ..data import canonical_name

    name = canonical_name(dataset)
    entries = judge_manifest()
    if name not in entries:
        raise JudgeError(f"no judge for {name} in the package (have: {', '.join(entries)}); "
                         "train one with scripts/train_judge.py")
    entry = entries[name]
    path = WEIGHTS / entry["file"]
    if not path.is_file():
        raise JudgeError(f"the judge weights {path} are missing; reinstall scratchgan or rebuild them with "
                         "scripts/train_judge.py")
    blob = path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != entry["sha256"]:
        raise JudgeError(f"the judge weights {path} are damaged or not the shipped ones: SHA-256 {digest}, "
                         f"expected {entry['sha256']}; reinstall scratchgan or rebuild them with "
                         "scripts/train_judge.py")
    flat = np.frombuffer(blob, dtype="<f2")
    state, offset = {}, 0
    for key, shape in entry["arrays"]:
        n = int(np.prod(shape))
        state[key] = flat[offset: offset + n].reshape(shape).astype(np.float32)
        offset += n
    if offset != flat.size:
        raise JudgeError(f"{path} holds {flat.size} numbers, the manifest describes {offset}")
    judge = build_judge(0)
    judge.load_state_dict(state)
    return judge.to(get_device(device))
