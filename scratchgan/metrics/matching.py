"""An unsupervised classifier's error: its categories matched to the true classes.

InfoGAN's categorical code c1 is learned without labels, so its category 3
need not mean the digit 3. To use c1 as a classifier (the paper's 5 % error on
MNIST, docs/infogan.md §5), each category is matched to a class first, from
the confusion matrix ``N[k, d]`` = how many images of class ``d`` Q puts in
category ``k``:

* **majority**: category ``k`` means its most frequent class, ``argmax_d
  N[k, d]``; two categories may mean the same class (and a class may be
  left without one), so this error can only be lower;
* **one-to-one** (the assignment problem, which the Hungarian algorithm
  solves): a permutation ``π`` of the classes maximising ``Σ_k N[k, π(k)]``.
  With more categories than classes (K > C) each class gets its own
  category instead, and the images of the K − C categories left over count
  as errors: a model that splits a class over two categories is charged for
  the smaller part.

The error is ``1 − (matched images) / (all images)``. The assignment is
solved exactly by dynamic programming over the subsets of classes already
used (:func:`best_assignment`): for 10 classes 2¹⁰ = 1,024 subsets, instant.
"""

from __future__ import annotations

import numpy as np

from ..nn.layers import check_label_array

__all__ = ["confusion_matrix", "best_assignment", "matched_error"]


def confusion_matrix(pred, labels, n_categories, n_classes):
    """``N[k, d]`` = the number of samples with category ``pred = k`` and class ``labels = d``.

    Parameters: pred, labels — integer arrays (n,), checked as every label in
    scratchgan is (:func:`scratchgan.nn.layers.check_label_array`). Returns:
    int64 (n_categories, n_classes).
    """
    pred, labels = np.asarray(pred), np.asarray(labels)
    if pred.shape != labels.shape or pred.ndim != 1 or pred.size == 0:
        raise ValueError(f"confusion_matrix: pred {pred.shape} and labels {labels.shape} must be two "
                         "non-empty vectors of the same length")
    check_label_array(pred, n_categories, "confusion_matrix: pred (the categories)")
    check_label_array(labels, n_classes, "confusion_matrix: labels")
    flat = pred.astype(np.int64) * n_classes + labels.astype(np.int64)
    return np.bincount(flat, minlength=n_categories * n_classes).reshape(n_categories, n_classes)


def best_assignment(score):
    """The one-to-one matching of rows to columns with the largest total score.

    Parameters: score (K, C) with K ≤ C ≤ 16. Returns: cols (K,) int, the
    column of each row, all different, maximising ``Σ_k score[k, cols[k]]``.

    Dynamic programming over the set ``S`` of columns given to rows
    ``0 … |S| − 1`` (the order of the rows is fixed, so ``|S|`` says which
    row comes next)::

        best(∅) = 0
        best(S ∪ {j}) = max over j ∉ S of  best(S) + score[|S|, j]

    and the answer is the best ``S`` with ``|S| = K``; each state remembers
    its last column, so the matching is read back from the end. That is
    ``2^C · C`` steps — exact, unlike a greedy matching, and small for C ≤ 16.
    """
    score = np.asarray(score, dtype=np.float64)
    if score.ndim != 2 or not 0 < score.shape[0] <= score.shape[1] <= 16:
        raise ValueError(f"best_assignment: expected a (K, C) matrix with 0 < K <= C <= 16, got shape {score.shape}")
    if not np.isfinite(score).all():
        raise ValueError("best_assignment: the scores must be finite")
    K, C = score.shape
    best = np.full(1 << C, -np.inf)
    last = np.full(1 << C, -1)
    best[0] = 0.0
    size = np.array([bin(s).count("1") for s in range(1 << C)])
    for s in range(1 << C):                 # every subset comes after the subsets it extends
        k = size[s]
        if k >= K or best[s] == -np.inf:
            continue
        for j in range(C):
            if not s >> j & 1:
                t, value = s | 1 << j, best[s] + score[k, j]
                if value > best[t]:
                    best[t], last[t] = value, j
    full = np.flatnonzero(size == K)
    s = int(full[np.argmax(best[full])])
    cols = np.empty(K, dtype=np.int64)
    for k in range(K - 1, -1, -1):          # read the matching back, last row first
        cols[k] = last[s]
        s &= ~(1 << int(cols[k]))
    return cols


def matched_error(pred, labels, n_categories=10, n_classes=10) -> dict:
    """The error of categories ``pred`` as a classifier of ``labels``, after matching.

    Returns a dict: ``error`` (one-to-one matching: each category its own
    class, or with more categories than classes each class its own category,
    the images in the others counted as errors), ``error_majority``,
    ``mapping`` and ``mapping_majority`` (the class of each category; in
    ``mapping`` None for a category matched to no class), ``confusion``
    (n_categories, n_classes) and ``n``.
    """
    N = confusion_matrix(pred, labels, n_categories, n_classes)
    if max(n_categories, n_classes) > 16:
        raise ValueError(f"matched_error: the one-to-one matching is solved exactly for up to 16 categories and "
                         f"classes, got {n_categories} categories and {n_classes} classes")
    n = int(N.sum())
    majority = N.argmax(axis=1)
    out = {"n": n, "confusion": N.tolist(), "mapping_majority": majority.tolist(),
           "error_majority": 1.0 - float(N.max(axis=1).sum()) / n}
    if n_categories <= n_classes:
        cols = best_assignment(N)                   # category k → class cols[k]
        mapping, matched = cols.tolist(), N[np.arange(n_categories), cols].sum()
    else:
        rows = best_assignment(N.T)                 # class d → category rows[d]; the other categories → none
        mapping = [None] * n_categories
        for d, k in enumerate(rows.tolist()):
            mapping[k] = d
        matched = N[rows, np.arange(n_classes)].sum()
    out.update(mapping=mapping, error=1.0 - float(matched) / n)
    return out
