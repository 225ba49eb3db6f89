"""The engine: modules with hand-derived gradients, containers, losses, optimisers.

Everything a model needs, importable from here::

    from scratchgan import nn
    D = nn.Sequential([nn.Dropout(0.2), nn.Maxout(784, 240, 5), nn.Linear(240, 1)])

* :mod:`~scratchgan.nn.module` — the :class:`Module` base (params, grads,
  buffers, accumulation, devices, state);
* :mod:`~scratchgan.nn.layers` — the reference layers, the textbook versions;
* :mod:`~scratchgan.nn.conv` — Conv2d and ConvTranspose2d (im2col, one product);
* :mod:`~scratchgan.nn.norm` — BatchNorm1d/2d and LayerNorm;
* :mod:`~scratchgan.nn.containers` — Sequential, Parallel, Fork, Concat;
* :mod:`~scratchgan.nn.losses` — adversarial losses on logits, cross-entropy, L1, Gaussian NLL;
* :mod:`~scratchgan.nn.optim` — SGD with momentum, Adam, RMSProp, schedules, weight decay;
* :mod:`~scratchgan.nn.gradcheck` — finite-difference checks;
* :mod:`~scratchgan.nn.fast` — drop-in faster versions, tested equal.

Importing this package needs NumPy alone.
"""

from . import containers, conv, fast, gradcheck, layers, losses, module, norm, optim  # noqa: F401
from .containers import Concat, Fork, Identity, Parallel, Sequential, skip_concat  # noqa: F401
from .conv import Conv2d, ConvTranspose2d  # noqa: F401
from .layers import (Dropout, Embedding, Flatten, LeakyReLU, Linear, Maxout, ReLU, Reshape, Sigmoid,  # noqa: F401
                     Tanh, init_weight, sigmoid)
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm  # noqa: F401
from .module import Module  # noqa: F401
from .optim import SGD, Adam, ExponentialDecay, LinearDecay, LinearMomentum, Optimizer, RMSProp  # noqa: F401
