"""Translate image files with a trained pix2pix checkpoint: ``python -m scratchgan translate``.

Inputs are grayscale PNG files or ``.npy`` batches, of the model's side (32)
or of the datasets' 28×28, which is padded to 32 with black, as the paired
tasks were (:mod:`scratchgan.paired`); the outputs are cropped back to the
input's side::

    python -m scratchgan translate runs/pix2pix/checkpoint.npz edges/*.png batch.npy --out translated/

* a PNG (read with matplotlib's reader) must be grayscale: one channel, or
  RGB(A) with equal channels and no transparency. Its translation is
  ``<out>/<name>.png``, 8-bit grayscale.
* a ``.npy`` file holds one image ``(H, W)`` or a batch ``(n, H, W)`` or
  ``(n, 1, H, W)``, float in [0, 1] or uint8 in 0…255. Its translations are
  ``<out>/<name>.npy``, float32 in [0, 1], in the input's shape.

Anything else — another size or shape, colour, transparency, values outside
[0, 1], NaN, an unreadable file — is an error naming the file, before
anything is written.

pix2pix's noise is dropout, kept on at test: ``seed`` picks it. Every file is
translated on its own, G's generator re-seeded with ``seed`` before it, so a
file's translation depends only on the seed and the file — not on which other
files are translated with it, nor in what order. Within a ``.npy`` batch the
dropout masks are drawn for the whole batch (in chunks of ``batch_size``), so
image ``i`` gets the ``i``-th masks: the same seed, file and batch size give
the same translations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .backend import to_numpy
from .paired import PAD
from .training.checkpoint import atomic_path

__all__ = ["Item", "read_png", "read_npy", "read_inputs", "translate_items", "write_outputs", "translate_files"]


@dataclass
class Item:
    """One input file: its ``images`` ``(k, side, side)`` in [0, 1] at the input's
    own ``side``, the ``kind`` ("png" or "npy") and the ``shape`` to give back."""

    path: str
    kind: str
    images: np.ndarray
    shape: tuple


def read_png(path) -> np.ndarray:
    """A grayscale PNG as a float32 ``(H, W)`` array in [0, 1]."""
    import matplotlib.image as mpimg

    try:
        img = mpimg.imread(path, format="png")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise ValueError(f"{path}: not a readable PNG file ({err})") from None
    img = np.asarray(img)
    if img.dtype.kind == "u":        # matplotlib returns PNGs as floats in [0, 1]; integers are scaled to it
        img = img / np.float32(np.iinfo(img.dtype).max)
    img = img.astype(np.float32)
    if img.ndim == 3 and img.shape[2] in (2, 4):         # gray + alpha, RGBA
        if not np.all(img[..., -1] == 1):
            raise ValueError(f"{path}: the image has transparency; give an opaque grayscale PNG")
        img = img[..., :-1]
    if img.ndim == 3 and img.shape[2] == 3:
        if not (np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2])):
            raise ValueError(f"{path}: a colour image; this model translates grayscale images (1 channel)")
        img = img[..., 0]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim != 2:
        raise ValueError(f"{path}: expected a grayscale image, got an array of shape {img.shape}")
    return img


def read_npy(path):
    """A ``.npy`` batch as float32 ``(n, H, W)`` in [0, 1] (see the module
    docstring), and the array's own shape."""
    try:
        a = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npy array ({err})") from None
    if a.ndim == 4 and a.shape[1] == 1:
        images = a[:, 0]
    elif a.ndim in (2, 3):
        images = a.reshape((-1,) + a.shape[-2:])
    else:
        raise ValueError(f"{path}: expected one image (H, W) or a batch (n, H, W) or (n, 1, H, W), got shape "
                         f"{a.shape}")
    if images.shape[0] == 0:
        raise ValueError(f"{path}: the batch is empty (shape {a.shape})")
    if a.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255), a.shape
    if a.dtype.kind != "f":
        raise ValueError(f"{path}: expected float pixels in [0, 1] or uint8 in 0..255, got dtype {a.dtype}")
    if not np.all(np.isfinite(images)):
        raise ValueError(f"{path}: the images hold NaN or infinite values")
    lo, hi = float(images.min()), float(images.max())
    if lo < 0 or hi > 1:
        raise ValueError(f"{path}: pixel values span [{lo:.4g}, {hi:.4g}]; expected [0, 1] "
                         "(or uint8 0..255)")
    return images.astype(np.float32), a.shape


def read_inputs(paths, side) -> list:
    """Every file of ``paths`` as an :class:`Item`, checked against a model
    that translates ``side × side`` images (``side − 2·PAD`` are padded)."""
    if not paths:
        raise ValueError("no input files given")
    items = []
    for path in paths:
        path = os.fspath(path)
        ext = os.path.splitext(path)[1].lower()
        if ext == ".png":
            img = read_png(path)
            item = Item(path, "png", img[None], img.shape)
        elif ext == ".npy":
            item = Item(path, "npy", *read_npy(path))
        else:
            raise ValueError(f"{path}: unsupported input; give .png images or .npy arrays")
        h, w = item.images.shape[1:]
        if h != w or h not in (side, side - 2 * PAD):
            raise ValueError(f"{path}: {h}x{w} pixels; this model translates {side}x{side} images "
                             f"(or {side - 2 * PAD}x{side - 2 * PAD}, padded to {side})")
        items.append(item)
    return items


def translate_items(gan, items, *, seed=0, batch_size=500) -> list:
    """G's translations of every item, each ``(k, side, side)`` in [0, 1] at its input's side.

    Each item on its own, G's dropout re-seeded with ``seed`` first: an
    item's translation depends on the seed and the item alone, not on the
    other items or their order (see the module docstring).
    """
    channels, side = gan.source_shape[0], gan.source_shape[-1]
    if channels != 1:
        raise ValueError(f"this model translates {channels}-channel images; translate reads grayscale files")
    results = []
    for it in items:
        padded = it.images.shape[-1] != side
        sources = (np.pad(it.images, ((0, 0), (PAD, PAD), (PAD, PAD))) if padded else it.images)[:, None]
        gan.seed(seed)                                             # this file's noise: the seed's alone
        y = np.asarray(to_numpy(gan.generate(len(sources), seed, batch_size, source=sources)))[:, 0]
        if not np.all(np.isfinite(y)):
            raise ValueError("the translations are not finite (a checkpoint with NaN or inf weights?)")
        results.append(y[:, PAD:side - PAD, PAD:side - PAD] if padded else y)
    return results


def _write_png(path, image):
    from PIL import Image     # matplotlib's own dependency

    with atomic_path(path, ".png") as tmp:
        Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), mode="L").save(tmp, format="PNG")


def write_outputs(items, outputs, out_dir) -> list:
    """Write each translation into ``out_dir`` (see the module docstring); returns the paths.
    Two inputs of the same name, or an output over its own input, are refused first."""
    targets = [os.path.join(out_dir, os.path.splitext(os.path.basename(it.path))[0] + "." + it.kind)
               for it in items]
    seen = {}
    for it, t in zip(items, targets):
        if t in seen:
            raise ValueError(f"{seen[t]} and {it.path} would both be written to {t}; translate them into "
                             "different --out folders")
        seen[t] = it.path
        if os.path.exists(it.path) and os.path.abspath(t) == os.path.abspath(it.path):
            raise ValueError(f"{it.path}: its translation would overwrite it; choose another --out")
    os.makedirs(out_dir, exist_ok=True)
    for it, y, t in zip(items, outputs, targets):
        if it.kind == "png":
            _write_png(t, y[0])
        else:
            with atomic_path(t, ".npy") as tmp:
                np.save(tmp, y.astype(np.float32).reshape(it.shape))
    return targets


def translate_files(gan, paths, out_dir, *, seed=0, batch_size=500, grid=None) -> list:
    """Read, translate and write ``paths`` (PNG or ``.npy``) into ``out_dir``;
    returns the paths of the translations. ``grid``: also save a picture
    with each row of (up to 10) inputs above their translations."""
    items = read_inputs(paths, gan.source_shape[-1])
    outputs = translate_items(gan, items, seed=seed, batch_size=batch_size)
    written = write_outputs(items, outputs, out_dir)
    if grid:
        from .plots import save_grid

        n = min(sum(len(it.images) for it in items), 50)
        side = gan.source_shape[-1]
        pad = [np.pad(a, ((0, 0),) + ((PAD, PAD),) * 2) if a.shape[-1] != side else a
               for a in [it.images for it in items] + outputs]
        inputs, translations = np.concatenate(pad[:len(items)])[:n], np.concatenate(pad[len(items):])[:n]
        cols, rows = min(n, 10), []  # a grid no wider than the files need
        for i in range(0, n, cols):  # rows of up to 10: inputs, then their translations
            rows += [inputs[i:i + cols], translations[i:i + cols]]
        tiles = np.concatenate([np.pad(r, ((0, cols - len(r)), (0, 0), (0, 0)), constant_values=1) for r in rows])
        save_grid(tiles, grid, nrow=cols, title="inputs (odd rows), translations (even rows)")
    return written
