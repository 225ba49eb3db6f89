"""A run's configuration: a preset, the run's overrides, and its settings."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from .. import presets

__all__ = ["RunConfig"]


@dataclass
class RunConfig:
    """Everything that defines a training run; ``None`` means "the preset's value".

    ``preset`` and the overrides (:data:`scratchgan.presets.OVERRIDES`) make
    the model and its training; the rest is the run: how long, where, how often
    to write what.
    """

    preset: str = "paper"
    dataset: str | None = None
    loss: str | None = None
    update: str | None = None          # "simultaneous" (the authors' code) or "alternating" (Algorithm 1)
    k: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_d: float | None = None          # one network's rate, over lr (D's, G's)
    lr_g: float | None = None
    optimizer: str | None = None       # "sgd" or "adam"
    prior: str | None = None
    epochs: int = 100                  # the total, also when resuming
    lr_decay_epochs: int | None = None  # the last N epochs decay both rates linearly to 0 (DCGAN authors')
    device: str = "auto"
    seed: int = 0
    sample_every: int = 1
    snapshot_every: int = 10
    log_every: int = 50
    max_iterations: int | None = None
    data_dir: str | None = None

    def overrides(self) -> dict:
        return {k: getattr(self, k) for k in presets.OVERRIDES}

    def flags(self, keys=presets.OVERRIDES) -> str:
        """The overrides among ``keys`` that this run sets, as command-line
        flags: e.g. ``" --lr-g 0.001"`` (empty when none is set)."""
        parts = []
        for k in keys:
            v = getattr(self, k)
            if v is not None:
                flag = "-k" if k == "k" else "--" + k.replace("_", "-")
                parts.append(f" {flag} {v:g}" if isinstance(v, float) else f" {flag} {v}")
        return "".join(parts)

    def describe(self) -> str:
        """``"<preset> preset"`` and the run's overrides, for titles: e.g.
        ``"dcgan-fc preset --lr-g 0.001"``."""
        return f"{self.preset} preset{self.flags()}"

    def resolved(self) -> presets.Preset:
        """The preset with this run's overrides applied (validated)."""
        return presets.resolve(self.preset, **self.overrides())

    def lr_decay_window(self) -> tuple[int, int] | None:
        """``(first, last)``: the learning rates decay from the end of epoch
        ``first`` to 0 at the end of epoch ``last`` (``--lr-decay-epochs``,
        docs/dcgan.md §6); ``None`` without a decay."""
        n = self.lr_decay_epochs
        if n is None:
            return None
        if not 1 <= n <= self.epochs:
            raise ValueError(f"--lr-decay-epochs {n}: needs 1 <= N <= --epochs ({self.epochs})")
        return self.epochs - n, self.epochs

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict, source="the configuration") -> "RunConfig":
        """Build from a dict, refusing unknown keys with a message naming ``source``.

        Format-1 configurations (scratchgan 0.1) had an ``extra`` dict of model
        overrides; an empty one is dropped, a non-empty one is refused.
        """
        d = dict(d)
        extra = d.pop("extra", None)
        if extra:
            raise ValueError(f"{source} was written by scratchgan 0.1 with model overrides {extra}, "
                             "which this version cannot rebuild; train a new run")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{source}: unknown configuration key(s) {unknown}; was it written by a "
                             "newer scratchgan?")
        return cls(**d)

    @classmethod
    def from_json(cls, text, source="the configuration") -> "RunConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{source}: the configuration is not valid JSON ({err})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{source}: the configuration is not a JSON object")
        return cls.from_dict(d, source)
