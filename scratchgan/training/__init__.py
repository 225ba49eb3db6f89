"""Training runs: configuration, the trainer, checkpoints, the run lock, statistics.

* :mod:`~scratchgan.training.config` — :class:`RunConfig`, a preset plus the run's settings;
* :mod:`~scratchgan.training.trainer` — :class:`Trainer`, epochs, logs, pictures, resume;
* :mod:`~scratchgan.training.checkpoint` — atomic writes (every file scratchgan
  writes goes through them) and checkpoints;
* :mod:`~scratchgan.training.lock` — one training process per output directory;
* :mod:`~scratchgan.training.stats` — statistics without host synchronisation.

Import the submodules you need; this package imports nothing heavy.
"""
