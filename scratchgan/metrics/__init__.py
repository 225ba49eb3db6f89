"""How good are the samples? The paper's Parzen estimate and the field's judged metrics.

* :mod:`~scratchgan.metrics.parzen` — the 2014 paper's Parzen-window
  log-likelihood (its Table 1; docs/paper.md §5). Kept for parity with the
  paper, but it cannot rank models: it rewards blur and memorisation (Theis,
  van den Oord & Bethge 2016 — k-means centroids beat real data on it).
* :mod:`~scratchgan.metrics.judged` — metrics in the feature space of
  scratchgan's own judge classifier (:mod:`scratchgan.models.judge`): FID,
  Inception score, mode coverage, precision and recall, label accuracy of
  conditional samples.
* :mod:`~scratchgan.metrics.translation` — image-to-image translation on
  held-out pairs (pix2pix): L1, PSNR, sharpness, and the judge's accuracy
  on translations (the paper's FCN-score analogue).
* :mod:`~scratchgan.metrics.evaluate` — all of them on one set of samples,
  as ``python -m scratchgan evaluate`` runs them.
* :mod:`~scratchgan.metrics.matching` — an unsupervised classifier's error
  after its categories are matched to the classes (InfoGAN's c1).

References: Goodfellow et al. 2014 (Parzen, Table 1); Breuleux et al. 2011
(the Parzen protocol); Heusel et al. 2017 (FID); Salimans et al. 2016
(Inception score); Isola et al. 2017 (FCN-score); Kynkäänniemi et al. 2019 (improved precision and recall);
Theis et al. 2016 (why Parzen misleads).
"""

from .judged import (fid, frechet_distance, inception_score, judge_outputs, label_accuracy,  # noqa: F401
                     mode_coverage, precision_recall)
from .matching import best_assignment, confusion_matrix, matched_error  # noqa: F401
from .parzen import (DEFAULT_BATCH_SIZE, DEFAULT_SIGMAS, ParzenResult, parzen_evaluate,  # noqa: F401
                     parzen_log_likelihood, parzen_log_likelihood_grid, select_sigma)
from .translation import TRANSLATION_METRICS, evaluate_translation, l1_error, psnr, sharpness  # noqa: F401
