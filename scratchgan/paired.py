"""Paired image-to-image tasks made from MNIST and Fashion-MNIST (pix2pix's data).

pix2pix learns ``G: source → target`` from aligned pairs. Its datasets
(facades, edges2shoes, maps) cannot be fetched here, so scratchgan makes
paired tasks from the files it has, the way edges2shoes was made from
photographs: a fixed function computes each source image from its target
(docs/pix2pix.md §5). Nothing is random: the same files give the same pairs,
bit for bit.

* ``edges2fashion`` — Fashion-MNIST. Source: the image's edges, where the
  Sobel gradient magnitude exceeds :data:`EDGE_THRESHOLD` (white edges on
  black). Target: the image. The edges2shoes analogue.
* ``lowres2mnist`` — MNIST super-resolution. Source: the digit averaged over
  4×4 blocks (7×7 pixels) and blown up again by repeating each pixel
  (nearest neighbour). Target: the digit. Many sharp digits share one blurry
  source, so an L1 loss alone predicts their blurry average; the adversarial
  term is what can make the strokes sharp again.

Both pad the 28×28 images to 32×32 with two black (0) pixels on every side,
because the U-Net halves the side five times (32 → 1). The labels are the
target image's, for the judge's accuracy (the paper's FCN-score analogue).

:func:`load` is the one loader the command line uses: ``"mnist"`` and
``"fashion-mnist"`` come straight from :func:`scratchgan.data.load_dataset`,
the paired tasks are computed from what it returns, so finding, downloading
and checking the files stays in :mod:`scratchgan.data`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import data as _data

__all__ = ["PairedDataset", "TASKS", "ALL_DATASETS", "EDGE_THRESHOLD", "PAD", "SIDE", "sobel_magnitude",
           "edges", "lowres", "pad", "crop", "make_pairs", "load_paired", "load"]

#: the side of every paired image: 28 padded by :data:`PAD` on each side
SIDE, PAD = 32, 2

#: Sobel magnitude above which a pixel is an edge. A vertical step of height h
#: gives ``|∇| = 4h`` beside it (weights 1, 2, 1), so 1.0 keeps steps of a
#: quarter of the pixel range and more.
EDGE_THRESHOLD = 1.0

#: the side of the low-resolution image of ``lowres2mnist`` (4×4 blocks of 28×28)
LOWRES = 7


def sobel_magnitude(images, border="zero"):
    """The Sobel gradient magnitude of each image, by slicing (no per-pixel loop).

    Parameters: images (N, H, W); border, what lies beyond the border:
    ``"zero"`` (the datasets' black background: a whole 28×28 digit, as the
    edge maps are drawn) or ``"replicate"`` (each border pixel repeated, so
    the border of a crop is no edge: a flat grey image has no gradient at
    all; the sharpness metric). Returns: (N, H, W) float32::

        gx = [−1 0 1; −2 0 2; −1 0 1] ⋆ x,   gy = gxᵀ-kernel ⋆ x,   |∇| = √(gx² + gy²)
    """
    modes = {"zero": "constant", "replicate": "edge"}
    if border not in modes:
        raise ValueError(f"sobel_magnitude: border must be 'zero' or 'replicate', got {border!r}")
    p = np.pad(np.asarray(images, dtype=np.float32), ((0, 0), (1, 1), (1, 1)), mode=modes[border])
    up, mid, down = p[:, :-2], p[:, 1:-1], p[:, 2:]                 # rows i−1, i, i+1
    gx = (up[..., 2:] + 2 * mid[..., 2:] + down[..., 2:]) - (up[..., :-2] + 2 * mid[..., :-2] + down[..., :-2])
    gy = (down[..., :-2] + 2 * down[..., 1:-1] + down[..., 2:]) - (up[..., :-2] + 2 * up[..., 1:-1] + up[..., 2:])
    return np.sqrt(gx * gx + gy * gy)


def edges(images, threshold=EDGE_THRESHOLD):
    """Binary edge maps: 1 where the Sobel magnitude exceeds ``threshold``.

    Parameters: images (N, H, W) in [0, 1]. Returns: (N, H, W) float32 of 0 and 1.
    """
    return (sobel_magnitude(images) > threshold).astype(np.float32)


def lowres(images, factor=28 // LOWRES):
    """Average over ``factor × factor`` blocks, then repeat each block mean
    ``factor`` times along both axes: the same side, ``factor``² fewer
    distinct pixels.

    Parameters: images (N, H, W), H and W multiples of ``factor``. Returns: (N, H, W) float32.
    """
    x = np.asarray(images, dtype=np.float32)
    n, h, w = x.shape
    if h % factor or w % factor:
        raise ValueError(f"lowres: {h}x{w} images do not split into {factor}x{factor} blocks")
    small = x.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))
    return small.repeat(factor, axis=1).repeat(factor, axis=2)


def pad(images, width=PAD):
    """``(N, H, W)`` → ``(N, H + 2·width, W + 2·width)`` with a black (0) border."""
    return np.pad(np.asarray(images), ((0, 0), (width, width), (width, width)))


def crop(images, width=PAD):
    """The inverse of :func:`pad` on the last two axes: ``(…, H, W)`` → ``(…, H − 2·width, W − 2·width)``."""
    return images[..., width:images.shape[-2] - width, width:images.shape[-1] - width]


#: name → (the dataset it is made from, source function, what it is)
TASKS = {
    "edges2fashion": ("fashion-mnist", edges, "Fashion-MNIST edges (Sobel magnitude > 1) -> the image"),
    "lowres2mnist": ("mnist", lowres, "MNIST averaged to 7x7 and repeated to 28x28 -> the digit"),
}

#: every name the loaders take: the real datasets and the paired tasks
ALL_DATASETS = _data.DATASETS + tuple(TASKS)


def make_pairs(task, images):
    """``(source, target)`` for flat 28×28 images of the task's dataset.

    Parameters
    ----------
    task : a name in :data:`TASKS`
    images : (N, 784) float32 in [0, 1]

    Returns
    -------
    source, target : (N, 1024) float32 in [0, 1], padded to 32×32; ``target``
        is ``images`` with the border, ``source`` is computed from it.
    """
    if task not in TASKS:
        raise ValueError(f"unknown paired task {task!r}; choose one of {', '.join(TASKS)}")
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != 784:
        raise ValueError(f"make_pairs: expected flat 28x28 images (N, 784), got shape {x.shape}")
    x = x.reshape(-1, 28, 28)
    source = TASKS[task][1](x)
    return (pad(source).reshape(len(x), -1).astype(np.float32),
            pad(x).reshape(len(x), -1).astype(np.float32))


@dataclass(frozen=True)
class PairedDataset(_data.Dataset):
    """A :class:`scratchgan.data.Dataset` of targets with their source images.

    ``train``, ``valid``, ``test`` are the *targets* (what G must produce) and
    ``train_source``, ``valid_source``, ``test_source`` the inputs, both
    ``(N, 1024)`` float32 in [0, 1] (32×32 images); the labels are the
    targets'. ``base`` is the dataset the pairs were made from (its judge
    scores the translations). All arrays are read-only.
    """

    train_source: np.ndarray = None
    valid_source: np.ndarray = None
    test_source: np.ndarray = None
    base: str = ""
    task: str = ""


def _frozen(a):
    a.flags.writeable = False
    return a


def load_paired(task, data_dir=None, download=True, split="paper", **kwargs) -> PairedDataset:
    """The paired task ``task`` (a name in :data:`TASKS`), made from its
    dataset as :func:`scratchgan.data.load_dataset` loads it (the same
    ``data_dir``, ``download``, ``split`` and keyword arguments)."""
    if task not in TASKS:
        raise ValueError(f"unknown paired task {task!r}; choose one of {', '.join(TASKS)}")
    base_name = TASKS[task][0]
    base = _data.load_dataset(base_name, data_dir=data_dir, download=download, split=split, **kwargs)
    parts = {}
    for part in ("train", "valid", "test"):
        source, target = make_pairs(task, getattr(base, part))
        parts[part], parts[f"{part}_source"] = _frozen(target), _frozen(source)
    return PairedDataset(name=task, split=base.split, train_labels=base.train_labels,
                         valid_labels=base.valid_labels, test_labels=base.test_labels, files=base.files,
                         verified=base.verified, image_shape=(1, SIDE, SIDE), base=base_name, task=task, **parts)


def load(name, data_dir=None, download=True, split="paper", **kwargs):
    """Any dataset by name: ``"mnist"``, ``"fashion-mnist"`` (a
    :class:`~scratchgan.data.Dataset`) or a paired task (a :class:`PairedDataset`)."""
    key = str(name).strip().lower()
    if key in TASKS:
        return load_paired(key, data_dir, download, split, **kwargs)
    if key.replace("_", "-") not in _data.DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(ALL_DATASETS)}")
    return _data.load_dataset(key, data_dir=data_dir, download=download, split=split, **kwargs)
