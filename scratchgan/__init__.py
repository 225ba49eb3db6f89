"""scratchgan: Generative Adversarial Nets (Goodfellow et al., 2014) from scratch.

NumPy on the CPU, CuPy on the GPU, one code path; every gradient derived by
hand and checked by finite differences.

Modules (one idea each): ``backend`` (NumPy/CuPy), ``layers``, ``network``
(Sequential), ``optim``, ``losses``, ``gan`` (Algorithm 1), ``gradcheck``,
``data`` (MNIST), ``models`` (the paper's G and D), ``metrics`` (Parzen),
``plots``, ``train`` and ``cli``.
"""

from . import backend, data, gan, gradcheck, layers, losses, metrics, models, network, optim, plots, train
from .backend import get_device

__version__ = "0.1.0"
