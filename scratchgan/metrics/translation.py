"""Metrics of image-to-image translation on held-out pairs (pix2pix).

Every translation ``G(x)`` is compared with its target ``y``, on the 28×28
image inside the 32×32 pair (the 2-pixel border is padding), in [0, 1]:

* **L1**: ``mean |G(x) − y|`` over pixels and images — what the L1 term
  minimises, so "L1 alone" should win it (the paper's finding, its §4.2).
* **PSNR**: ``10·log₁₀(1 / MSE)`` in dB per image (peak 1), averaged over
  images; higher is closer.
* **Sharpness**: mean Sobel gradient magnitude of the translations over that
  of the targets — 1 for images as sharp as the real ones, below 1 for blur
  (a 3×3 box blur of MNIST digits scores about 0.77). The crop's border
  pixels are repeated outward for the filter, so the border of the crop is
  no edge: a flat grey image scores 0. (Not in the paper, which shows its
  blur in pictures; a number for the same claim.)
* **Accuracy**: the judge classifier's accuracy on the translations against
  the *source* pair's label — the analogue of the paper's FCN-score, which
  asks an off-the-shelf network whether generated photos are recognisable
  (its Table 1). The judge's accuracy on the targets themselves is the
  "ground truth" row.
"""

from __future__ import annotations

import time

import numpy as np

from ..backend import to_numpy
from .judged import judge_outputs, label_accuracy

__all__ = ["TRANSLATION_METRICS", "l1_error", "psnr", "sharpness", "evaluate_translation"]

#: the metrics of a translation, in the order ``evaluate`` reports them
TRANSLATION_METRICS = ("l1", "psnr", "sharpness", "accuracy")


def _images(a, side=28):
    """``(N, side, side)`` float64 host images: the centred ``side × side`` crop."""
    a = np.asarray(to_numpy(a), dtype=np.float64)
    big = a.shape[-1] if a.ndim >= 3 else int(np.sqrt(a.shape[-1]))
    a = a.reshape(len(a), big, big)
    cut = (big - side) // 2
    if cut < 0:
        raise ValueError(f"images of side {big} are smaller than the {side}x{side} that are scored")
    return a[:, cut: cut + side, cut: cut + side]


def l1_error(outputs, targets) -> float:
    """``mean |outputs − targets|`` over the 28×28 crops (pixels in [0, 1])."""
    return float(np.abs(_images(outputs) - _images(targets)).mean())


def psnr(outputs, targets) -> np.ndarray:
    """Per-image PSNR in dB, ``10·log₁₀(1 / MSE)`` on the 28×28 crops (peak 1);
    an exact copy (MSE 0) counts as 100 dB."""
    mse = ((_images(outputs) - _images(targets)) ** 2).mean(axis=(1, 2))
    return 10 * np.log10(1.0 / np.maximum(mse, 1e-10))


def sharpness(outputs, targets) -> float:
    """Mean Sobel magnitude of ``outputs`` over that of ``targets`` (28×28
    crops, their border pixels repeated outward: a zero padding would count
    the crop's border as an edge wherever the image is not black there)."""
    from ..paired import sobel_magnitude

    ref = float(sobel_magnitude(_images(targets), border="replicate").mean())
    return float(sobel_magnitude(_images(outputs), border="replicate").mean()) / max(ref, 1e-12)


def evaluate_translation(gan, data, judge=None, metrics=TRANSLATION_METRICS, *, n=None, seed=0, batch_size=500,
                         outputs=None):
    """Translate the first ``n`` test sources of a paired dataset and score them.

    Parameters
    ----------
    gan : a translating variant (``"source"`` in its ``needs``; :class:`scratchgan.gan.Pix2Pix`)
    data : a :class:`scratchgan.paired.PairedDataset`
    judge : the base dataset's judge (:func:`scratchgan.models.judge.load_judge`), for ``accuracy``
    metrics : which of :data:`TRANSLATION_METRICS`
    n : how many test pairs (default: all)
    seed : seeds G's dropout (the paper's noise), so the same call gives the same numbers
    outputs : translations already made (``(n, 1, H, W)`` in [0, 1]); G is not run then

    Returns
    -------
    dict with ``n_pairs``, the metrics asked (``accuracy`` with ``ground_truth``,
    the judge's accuracy on the targets) and ``seconds``.
    """
    unknown = set(metrics) - set(TRANSLATION_METRICS)
    if unknown:
        raise ValueError(f"unknown translation metric(s) {sorted(unknown)}; choose from "
                         f"{', '.join(TRANSLATION_METRICS)}")
    if getattr(data, "test_source", None) is None:
        raise ValueError(f"the {data.name} dataset has no source images: translations are scored on a paired "
                         "dataset")
    if "accuracy" in metrics and judge is None:
        raise ValueError("the accuracy metric needs the judge of the dataset the pairs were made from")
    n = len(data.test) if n is None else min(int(n), len(data.test))
    t0 = time.perf_counter()
    if outputs is None:
        sources = np.asarray(data.test_source[:n]).reshape((n,) + tuple(gan.source_shape))
        gan.seed(seed)
        outputs = gan.generate(n, seed, batch_size, source=sources)
    outputs = np.asarray(to_numpy(outputs), dtype=np.float32)
    if not np.all(np.isfinite(outputs)):
        raise ValueError("the translations are not all finite (a generator with NaN or inf weights?)")
    targets = data.test[:n]
    out, seconds = {"n_pairs": n}, {"translate": time.perf_counter() - t0}
    if "l1" in metrics:
        out["l1"] = l1_error(outputs, targets)
    if "psnr" in metrics:
        p = psnr(outputs, targets)
        out["psnr"] = {"mean": float(p.mean()), "std_err": float(p.std() / np.sqrt(len(p)))}
    if "sharpness" in metrics:
        out["sharpness"] = sharpness(outputs, targets)
    if "accuracy" in metrics:
        t0 = time.perf_counter()
        dev = judge.device
        labels = np.asarray(data.test_labels[:n])
        _, logits = judge_outputs(judge, dev.asarray(_images(outputs).astype(np.float32)))
        _, real_logits = judge_outputs(judge, dev.asarray(_images(targets).astype(np.float32)))
        out["accuracy"] = {"value": label_accuracy(logits, labels),
                           "ground_truth": label_accuracy(real_logits, labels)}
        seconds["judge"] = time.perf_counter() - t0
    out["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    return out
