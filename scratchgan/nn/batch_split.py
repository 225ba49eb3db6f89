"""One batch, several threads, one set of weights: data parallelism on the CPU.

A speed trick, kept apart from the layers (as :mod:`scratchgan.nn.fast`
is): :class:`BatchSplit` wraps a network and is a drop-in for it. Each
forward pass cuts the batch into ``workers`` consecutive slices and runs
slice ``i`` through replica ``i`` in its own thread; backward does the same
with the slices of ``dy``; the replicas' parameter gradients are then added
into the network's own. The replicas hold the *same* parameter arrays (one
set of weights, one optimiser), each its own gradients and forward cache.

Why it is exact. When no layer mixes the samples of a batch, the output for
sample ``n`` depends on sample ``n`` alone, and a parameter gradient is a sum
over the samples, ``∂L/∂θ = Σ_n ∂L_n/∂θ``; the slices' sums add up to it
(to float rounding: the order of the additions changes). BatchNorm mixes the
samples, dropout draws its masks from one generator: a network with either
is refused. The gradient-penalty passes (:mod:`scratchgan.nn.second_order`)
run per slice the same way.

Why it is faster. On a CPU with C cores the BLAS library spreads each
matrix product over the cores, but im2col, col2im and the element-wise
layers run in NumPy on one core: with two cores they are a third of a WGAN-GP
critic step. Slices in threads (NumPy releases the GIL in its loops and its
BLAS calls) run *everything* on every core; the BLAS library must then use
one thread per slice (``set_cpu_threads(1)``), or the threads oversubscribe
the cores. On the GPU one kernel already fills the device: BatchSplit is for
the CPU only and refuses to move.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..backend import get_device
from .layers import positive_int
from .module import Module

__all__ = ["BatchSplit", "why_not_split"]


def why_not_split(module):
    """Why ``module`` cannot run on slices of a batch (a sentence), or None if it can."""
    for m in module.modules():
        if m.buffers:
            return f"{m!r} keeps running statistics over the batch (it mixes the samples)"
        if hasattr(m, "rng"):
            return f"{m!r} draws random numbers (the slices would draw them in another order)"
    return None


def _split(x, bounds):
    """``x`` (an array, a tuple of arrays or None) cut into the batch slices ``bounds``."""
    if x is None:
        return [None] * len(bounds)
    if isinstance(x, (tuple, list)):
        return [tuple(parts) for parts in zip(*(_split(a, bounds) for a in x))]
    return [x[a:b] for a, b in bounds]


def _join(parts):
    """The slices' results back along the batch axis (tuples element by element)."""
    first = parts[0]
    if first is None:
        return None
    if isinstance(first, tuple):
        return tuple(_join([p[i] for p in parts]) for i in range(len(first)))
    return np.concatenate(parts)


class BatchSplit(Module):
    """``module`` run on ``workers`` slices of every batch in as many threads.

    A drop-in for ``module``: same outputs and gradients (to rounding), same
    parameter names (checkpoints do not see it), same parameter and gradient
    arrays (an optimiser built on either steps the other). Only for the CPU.

    Parameters
    ----------
    module : a scratchgan Module without batch norm or dropout
    workers : int, the number of slices and threads (a batch smaller than
        ``workers`` uses as many as it has samples)
    """

    def __init__(self, module, workers=2):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"BatchSplit wraps a scratchgan Module, got {type(module).__name__}")
        why = why_not_split(module)
        if why:
            raise ValueError(f"BatchSplit cannot split this network over its batch: {why}")
        self.module = module
        self.workers = positive_int("workers", workers)
        self._pool = None
        self._bounds = None
        self._make_replicas()

    def _make_replicas(self):
        """Replica 0 is the module; the others share its parameter arrays and
        have their own gradients (zero) and caches."""
        self._replicas = [self.module]
        for _ in range(self.workers - 1):
            rep = copy.deepcopy(self.module)
            for src, dst in zip(self.module.modules(), rep.modules()):
                dst.params = src.params            # the same dict: one set of weights
                dst._cache = None
            rep.zero_grad()
            self._replicas.append(rep)

    # -- threads ------------------------------------------------------------------------------
    def map(self, fn, *batched):
        """``[fn(replica_i, slice_i of each of batched), …]`` over the slices of
        the last forward pass, slice 0 in this thread and the others in the
        pool. Every slice finishes before an error is raised."""
        if self._bounds is None:
            raise RuntimeError("BatchSplit: forward() must come before backward()")
        m = self._bounds[-1][1]
        for b in batched:
            for a in (b if isinstance(b, (tuple, list)) else (b,)):
                if a is not None and (getattr(a, "ndim", 0) < 1 or a.shape[0] != m):
                    raise ValueError(f"BatchSplit: the forward pass had a batch of {m}, got an array of shape "
                                     f"{tuple(getattr(a, 'shape', ()))}")
        cut = [_split(b, self._bounds) for b in batched]
        jobs = [(rep, [c[i] for c in cut]) for i, rep in enumerate(self._replicas[:len(self._bounds)])]
        if len(jobs) == 1:
            return [fn(jobs[0][0], *jobs[0][1])]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers - 1, thread_name_prefix="batch-split")
        futures = [self._pool.submit(fn, rep, *args) for rep, args in jobs[1:]]
        try:
            results = [fn(jobs[0][0], *jobs[0][1])]
        except BaseException as err:
            results = [err]
        results += [f.exception() or f.result() for f in futures]   # every slice finishes first
        for (a, b), r in zip(self._bounds, results):
            if isinstance(r, BaseException):
                if hasattr(r, "add_note"):  # Python >= 3.11: say which rows the shapes above refer to
                    r.add_note(f"(in rows {a}:{b} of a batch of {m}, one slice of a BatchSplit)")
                raise r
        return results

    join = staticmethod(_join)

    def reduce_grads(self):
        """Add every replica's gradients into the module's and zero them."""
        for rep in self._replicas[1:]:
            for (_, _, g), (_, _, r) in zip(self.module.named_parameters(), rep.named_parameters()):
                g += r
            rep.zero_grad()

    # -- the Module interface -------------------------------------------------------------------
    def forward(self, x, train=True):
        """Parameters: x, the module's input (an array or a tuple of arrays,
        batch first). Returns: the module's output, its slices joined."""
        first = x[0] if isinstance(x, (tuple, list)) and len(x) else x
        if getattr(first, "ndim", 0) < 1:
            raise ValueError(f"BatchSplit: expected an array (or a tuple of arrays) with a batch axis first, "
                             f"got {type(x).__name__}")
        m = first.shape[0]
        n = max(1, min(self.workers, m))
        edges = [m * i // n for i in range(n + 1)]
        self._bounds = list(zip(edges[:-1], edges[1:]))
        return _join(self.map(lambda rep, part: rep.forward(part, train=train), x))

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """Each slice's backward in its thread; the replicas' gradients are
        then added into the module's. Returns the joined dx, or None."""
        def slice_backward(rep, d):
            out = rep.backward(d, need_dx=need_dx, param_grads=param_grads)
            if param_grads:
                rep.gradients()   # fast layers' deferred weight products run here, in the slice's thread
            return out

        dx = self.map(slice_backward, dy)
        if param_grads:
            self.reduce_grads()
        return _join(dx) if need_dx else None

    def modules(self):
        yield self
        yield from self.module.modules()

    def zero_grad(self):
        """The module's gradients and the replicas' (a pass stopped by an error may leave some there)."""
        for rep in self._replicas:
            rep.zero_grad()

    def named_parameters(self, prefix=""):
        return self.module.named_parameters(prefix)

    def named_buffers(self, prefix=""):
        return self.module.named_buffers(prefix)

    def to(self, device=None, dtype=None):
        if device is not None and get_device(device).kind != "cpu":
            raise ValueError("BatchSplit runs threads on the CPU; on a GPU use the network itself")
        self.module.to(device, dtype)
        self._make_replicas()
        return self

    def output_shape(self, input_shape):
        return self.module.output_shape(input_shape)

    def __deepcopy__(self, memo):
        return BatchSplit(copy.deepcopy(self.module, memo), self.workers)

    def __repr__(self):
        return f"BatchSplit({self.module!r}, workers={self.workers})"
