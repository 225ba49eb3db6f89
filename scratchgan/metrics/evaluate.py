"""Every metric on one set of samples, as ``python -m scratchgan evaluate`` runs them.

The reference images are the dataset's 10,000 *test* images (FID, precision
and recall, Parzen); the real-data floor of FID compares 10,000 *training*
images with them — what a perfect generator of the training distribution
would get. The result is a JSON-ready dict with one entry per metric, each
holding its settings.
"""

from __future__ import annotations

import time

import numpy as np

from ..backend import to_numpy
from .judged import fid, inception_score, judge_outputs, label_accuracy, mode_coverage, precision_recall
from .parzen import parzen_evaluate

__all__ = ["METRICS", "evaluate_samples"]

#: the metrics ``evaluate`` knows, in the order it reports them
METRICS = ("fid", "is", "modes", "pr", "parzen")


def evaluate_samples(samples, data, judge=None, metrics=METRICS, *, labels=None, device=None, k=3, n_ref=10000,
                     n_valid=1000, n_test=None, progress=False):
    """Evaluate ``samples`` (N, 784) in [0, 1] against the dataset ``data``.

    Parameters
    ----------
    samples : array (N, 784), on the judge's device
    data : scratchgan.data.Dataset (its ``train``, ``valid``, ``test`` images)
    judge : the dataset's judge (:func:`scratchgan.models.judge.load_judge`); only Parzen runs without one
    metrics : which of :data:`METRICS` to compute
    labels : the labels conditional samples were drawn for (adds ``label_accuracy``: overall, and per
        class, ``None`` for a class never asked for)
    device : where the real images go (default: the judge's)
    k : neighbours for precision and recall
    n_ref : real test (and training) images the judged metrics use
    n_valid, n_test : validation images that choose Parzen's σ (the paper: 1,000) and test images it
        scores (the paper: all 10,000)

    Returns
    -------
    dict with keys among ``fid``, ``is``, ``modes``, ``precision``, ``recall``,
    ``parzen``, ``label_accuracy``, each a dict of values and settings, and
    ``seconds`` per metric.
    """
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}; choose from {', '.join(METRICS)}")
    need_judge = bool({"fid", "is", "modes", "pr"} & set(metrics)) or labels is not None
    if need_judge and judge is None:
        raise ValueError("the judged metrics (fid, is, modes, pr) need the dataset's judge")
    from ..backend import get_device
    device = device or (judge.device if judge is not None else get_device("cpu"))
    samples_host = np.asarray(to_numpy(samples), np.float32).reshape(len(samples), -1)
    if not np.all(np.isfinite(samples_host)):
        raise ValueError("the samples are not all finite (a generator with NaN or inf weights?)")
    out, seconds = {"n_samples": int(len(samples_host))}, {}
    test = data.test[:n_ref]
    if need_judge:
        t0 = time.perf_counter()
        feats, logits = judge_outputs(judge, device.asarray(samples_host), progress=progress, desc="judging samples")
        test_feats, test_logits = judge_outputs(judge, device.asarray(test), progress=progress, desc="judging test")
        seconds["judge"] = time.perf_counter() - t0
    if "fid" in metrics:
        t0 = time.perf_counter()
        train_feats, _ = judge_outputs(judge, device.asarray(data.train[:n_ref]), progress=progress,
                                       desc="judging train")
        out["fid"] = {"value": fid(feats, test_feats), "real_floor": fid(train_feats, test_feats),
                      "reference": f"{len(test)} test images", "floor": f"{n_ref} training vs {len(test)} test images",
                      "features": "judge penultimate layer (128)"}
        seconds["fid"] = time.perf_counter() - t0
    if "is" in metrics:
        mean, std = inception_score(logits)
        test_mean, _ = inception_score(test_logits)
        out["is"] = {"mean": mean, "std": std, "splits": 10, "real_test": test_mean}
    if "modes" in metrics:
        out["modes"] = mode_coverage(logits)
    if "pr" in metrics:
        t0 = time.perf_counter()
        p, r = precision_recall(test_feats, feats, k=k)
        out["precision"] = {"value": p, "k": k, "reference": f"{len(test)} test images"}
        out["recall"] = {"value": r, "k": k, "reference": f"{len(test)} test images"}
        seconds["pr"] = time.perf_counter() - t0
    if labels is not None:
        labels = np.asarray(to_numpy(labels))
        value = label_accuracy(logits, labels)
        right = logits.argmax(axis=1) == labels
        out["label_accuracy"] = {"value": value,
                                 "per_class": [float(right[labels == c].mean()) if (labels == c).any() else None
                                               for c in range(logits.shape[1])]}
    if "parzen" in metrics:
        t0 = time.perf_counter()
        valid, scored = data.valid[:n_valid], data.test[:n_test]
        r = parzen_evaluate(device.asarray(samples_host), device.asarray(valid), device.asarray(scored),
                            progress=progress)
        out["parzen"] = {"mean": r.mean, "std_err": r.std_err, "sigma": r.sigma, "n_valid": int(len(valid)),
                         "n_test": int(len(scored)), "sigmas": list(map(float, r.sigmas)),
                         "valid_means": None if r.valid_means is None else list(map(float, r.valid_means))}
        seconds["parzen"] = time.perf_counter() - t0
    out["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    return out
