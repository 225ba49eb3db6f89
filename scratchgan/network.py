"""``Sequential``: a list of layers run forward, then backward in reverse.

The chain rule for ``y = f_L(… f_2(f_1(x)))`` is just "call each layer's
``backward`` in reverse order, feeding each the gradient the next one
returned" — that is all backpropagation is here.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from .backend import Device, device_of, get_device, to_numpy
from .layers import Dropout, Layer

__all__ = ["Sequential", "atomic_savez", "publish"]


def publish(tmp, path) -> None:
    """Move the finished temporary file ``tmp`` over ``path`` atomically.

    ``tempfile.mkstemp`` creates files readable by their owner only; the
    published file gets the usual permissions (0o666 less the umask), like any
    file the user writes.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def atomic_savez(path, arrays: dict) -> None:
    """Write ``arrays`` to ``path`` (.npz) atomically.

    The data go to a temporary file in the same directory, are flushed to
    disk, and only then renamed over ``path`` (``os.replace`` is atomic on
    POSIX and Windows), so a crash leaves either the old file or the new one,
    never half of one.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{k: to_numpy(v) for k, v in arrays.items()})
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class Sequential(Layer):
    """Layers applied in order.

    Parameters are named ``"<index>.<key>"`` — ``"0.W"``, ``"0.b"``,
    ``"3.W"`` — for optimisers and checkpoints.

    Examples
    --------
    >>> from scratchgan.layers import Linear, ReLU, Sigmoid
    >>> G = Sequential([Linear(100, 1200), ReLU(), Linear(1200, 784), Sigmoid()])
    """

    def __init__(self, layers):
        super().__init__()
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} is a {type(layer).__name__}, not a scratchgan Layer")
        self._first_param = next(
            (i for i, l in enumerate(self.layers) if l.params), len(self.layers)
        )

    # -- forward / backward ------------------------------------------------------
    def forward(self, x, train: bool = True):
        for layer in self.layers:
            x = layer.forward(x, train=train)
        return x

    def backward(self, dy, *, need_dx: bool = True, param_grads: bool = True):
        """Back-propagate ``dy = ∂L/∂y`` through every layer, last to first.

        Parameters
        ----------
        need_dx : bool
            Return ∂L/∂x. With ``False`` the layers below the first layer with
            parameters are not visited at all, and that layer skips its input
            gradient (the data need no gradient).
        param_grads : bool
            Fill every layer's ``grads``. ``False`` passes the gradient
            *through* the network without computing parameter gradients (the
            generator step passes ∂L/∂D(G(z)) through D to G, PAPER.md §3).
        """
        stop = 0 if need_dx else self._first_param
        for i in range(len(self.layers) - 1, stop - 1, -1):
            dy = self.layers[i].backward(
                dy, need_dx=need_dx or i > stop, param_grads=param_grads
            )
        return dy if need_dx else None

    # -- parameters ----------------------------------------------------------------
    @property
    def params(self) -> dict:
        """All parameters by name (``"0.W"``…), the arrays themselves, not copies."""
        return {f"{i}.{k}": v for i, l in enumerate(self.layers) for k, v in l.params.items()}

    @params.setter
    def params(self, value):  # Layer.__init__ assigns {}; parameters live in the layers
        pass

    @property
    def grads(self) -> dict:
        """All gradients by name, matching :attr:`params`."""
        return {f"{i}.{k}": v for i, l in enumerate(self.layers) for k, v in l.grads.items()}

    @grads.setter
    def grads(self, value):
        pass

    def zero_grad(self) -> None:
        """Set every gradient to zero (in place)."""
        for layer in self.layers:
            for g in layer.grads.values():
                g[...] = 0

    def set_rng(self, rng) -> "Sequential":
        """Give every :class:`~scratchgan.layers.Dropout` layer the generator ``rng``."""
        for layer in self.layers:
            if isinstance(layer, Dropout):
                layer.rng = rng
            elif isinstance(layer, Sequential):
                layer.set_rng(rng)
        return self

    def to(self, device=None, dtype=None) -> "Sequential":
        for layer in self.layers:
            layer.to(device=device, dtype=dtype)
        return self

    @property
    def device(self) -> Device:
        for v in self.params.values():
            return device_of(v)
        return get_device("cpu")

    @property
    def dtype(self):
        for v in self.params.values():
            return v.dtype
        return np.dtype(np.float32)

    def output_features(self, n_in: int) -> int:
        for layer in self.layers:
            n_in = layer.output_features(n_in)
        return n_in

    # -- checkpoints -----------------------------------------------------------------
    def state_dict(self) -> dict:
        """Parameters as host (NumPy) copies, by name."""
        return {k: to_numpy(v).copy() for k, v in self.params.items()}

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays into the parameters, in place, checking names and shapes."""
        own = self.params
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        if missing or extra:
            raise ValueError(f"parameter names differ: missing {missing}, unexpected {extra}")
        sources = {k: np.asarray(to_numpy(state[k])) for k in own}
        for k, v in own.items():  # check every shape before copying any array
            if sources[k].shape != v.shape:
                raise ValueError(f"parameter {k}: shape {sources[k].shape} in the file, {v.shape} in the model")
        for k, v in own.items():
            v[...] = get_device(device_of(v)).asarray(sources[k], dtype=v.dtype)

    def save(self, path) -> None:
        """Save the parameters to ``path`` as ``.npz`` (atomically)."""
        atomic_savez(path, self.state_dict())

    def load(self, path) -> None:
        """Load parameters saved by :meth:`save`."""
        with np.load(path) as f:
            self.load_state_dict({k: f[k] for k in f.files})

    # -- display -----------------------------------------------------------------------
    def summary(self, n_in: int) -> str:
        """A table: index, layer, output shape, parameter count."""
        rows = [("#", "layer", "output shape", "params")]
        total = 0
        for i, layer in enumerate(self.layers):
            n_in = layer.output_features(n_in)
            total += layer.n_params
            rows.append((str(i), repr(layer), f"(m, {n_in})", f"{layer.n_params:,}"))
        rows.append(("", "total", "", f"{total:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        line = "  ".join("-" * w for w in widths)
        fmt = lambda r: "  ".join(  # noqa: E731
            r[c].rjust(widths[c]) if c in (0, 3) else r[c].ljust(widths[c]) for c in range(4)
        )
        out = [fmt(rows[0]), line] + [fmt(r) for r in rows[1:-1]] + [line, fmt(rows[-1])]
        return "\n".join(out)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __repr__(self):
        inner = ",\n  ".join(repr(l) for l in self.layers)
        return f"Sequential([\n  {inner}\n])"
