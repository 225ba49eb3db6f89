"""The engine: modules with hand-derived gradients, containers, losses, optimisers.

Everything a model needs, importable from here::

    from scratchgan import nn
    D = nn.Sequential([nn.Dropout(0.2), nn.Maxout(784, 240, 5), nn.Linear(240, 1)])

* :mod:`~scratchgan.nn.module` — the :class:`Module` base (params, grads,
  buffers, accumulation, devices, state);
* :mod:`~scratchgan.nn.layers` — the reference layers, the textbook versions;
* :mod:`~scratchgan.nn.containers` — Sequential, Parallel, Fork, Concat;
* :mod:`~scratchgan.nn.losses` — adversarial losses on logits;
* :mod:`~scratchgan.nn.optim` — SGD with momentum, Adam, schedules;
* :mod:`~scratchgan.nn.gradcheck` — finite-difference checks;
* :mod:`~scratchgan.nn.fast` — drop-in faster versions, tested equal.

Importing this package needs NumPy alone.
"""

from . import containers, fast, gradcheck, layers, losses, module, optim  # noqa: F401
from .containers import Concat, Fork, Identity, Parallel, Sequential, skip_concat  # noqa: F401
from .layers import (Dropout, LeakyReLU, Linear, Maxout, ReLU, Sigmoid, Tanh,  # noqa: F401
                     init_weight, sigmoid)
from .module import Module  # noqa: F401
from .optim import SGD, Adam, ExponentialDecay, LinearMomentum, Optimizer  # noqa: F401
