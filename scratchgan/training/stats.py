"""Training statistics without host synchronisation.

A step returns its statistics as 0-d arrays on the training device. On the GPU
``float(x)`` waits for every queued kernel; :class:`StatsLog` collects the
arrays and moves them to the host in one transfer every ``N`` iterations, and
stops the run at the first non-finite loss, naming its iteration.
"""

from __future__ import annotations

import math

from ..backend import get_array_module, to_numpy

__all__ = ["StatsLog", "NonFiniteLossError", "grad_norm"]


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; names the iteration and the loss.

    ``which`` names the network: ``"D"`` for ``d_loss``, ``"G"`` for
    ``g_loss``, the key without ``_loss`` for other losses (``"q"``)."""

    def __init__(self, step: int, which: str, value: float):
        self.step, self.which, self.value = step, which, value
        super().__init__(f"non-finite {which} loss ({value}) at iteration {step}; stopping")


def _loss_owner(key: str) -> str:
    """``"d_loss"`` → ``"D"``, ``"g_loss"`` → ``"G"``, ``"q_loss"`` → ``"q"``."""
    name = key[: -len("loss")].rstrip("_") or key
    return {"d": "D", "g": "G"}.get(name, name.replace("_", " "))


def grad_norm(module):
    """‖∇θ‖₂ over all of a module's gradients, a 0-d device array."""
    grads = list(module.gradients().values())
    xp = get_array_module(grads[0]) if grads else None
    if xp is None:
        return 0.0
    return xp.sqrt(sum(xp.vdot(g.ravel(), g.ravel()) for g in grads))


class StatsLog:
    """Per-iteration statistics, moved to the host by :meth:`flush`."""

    def __init__(self):
        self._steps: list = []
        self._rows: list = []

    def append(self, step: int, stats: dict) -> None:
        self._steps.append(step)
        self._rows.append(stats)

    def __len__(self):
        return len(self._rows)

    def flush(self) -> list:
        """Host rows ``{"step": t, "d_loss": …, …}``. Raises
        :class:`NonFiniteLossError` for the *first* iteration with a
        non-finite value of a key ending in ``loss``."""
        if not self._rows:
            return []
        keys = list(self._rows[0])
        xp = get_array_module(*self._rows[0].values())
        table = to_numpy(xp.stack([xp.stack([xp.asarray(r[k], dtype=xp.float64) for k in keys])
                                   for r in self._rows]))
        steps, self._steps, self._rows = self._steps, [], []
        out = []
        for t, row in zip(steps, table):
            rec = {"step": t, **{k: float(v) for k, v in zip(keys, row)}}
            for k in keys:
                if k.endswith("loss") and not math.isfinite(rec[k]):
                    raise NonFiniteLossError(t, _loss_owner(k), rec[k])
            out.append(rec)
        return out
