"""How a class label enters a network: one-hot rows, and label maps beside feature maps.

A conditional GAN (docs/cgan.md §4) gives the label ``y`` to G and D as a
second input. The pieces here turn integer labels into what a layer can take:

* :class:`OneHot` — labels ``(N,)`` → one-hot rows ``(N, C)``; a Linear or
  Maxout layer on them is the paper's "y (one-hot) → hidden layer";
* :class:`LabelConcat` — ``(h, onehot) ↦ [h, y]`` along the channels: the
  one-hot itself beside a feature vector, or ``C`` constant *label maps*
  beside feature maps (the DCGAN authors' ``conv_cond_concat``);
* :class:`LabelSequential` — a chain whose :class:`LabelConcat` layers see the
  label: the input is the tuple ``(x, labels)``.

Labels are data: no gradient flows into them. Every backward here returns
``None`` for the labels and cuts their part out of the gradient. They are
checked by :func:`scratchgan.nn.layers.check_label_array`, as Embedding's are.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..nn import Module, Sequential
from ..nn.layers import check_label_array, positive_int

__all__ = ["OneHot", "LabelConcat", "LabelSequential"]


class OneHot(Module):
    """Integer labels → one-hot rows: ``y[i, c] = [labels[i] = c]``.

    Parameters
    ----------
    num_classes : int, C
    dtype : the rows' dtype (the network's)

    Input: labels (N,) integers in ``[0, C)``. Output: (N, C).
    """

    def __init__(self, num_classes, dtype=np.float32):
        super().__init__()
        self.num_classes = positive_int("num_classes", num_classes)
        self.out_dtype = np.dtype(dtype)

    def forward(self, labels, train=True):
        """Parameters: labels (N,). Returns: y (N, C), one 1 per row."""
        check_label_array(labels, self.num_classes, repr(self))
        xp = get_array_module(labels)
        self._cache = labels.shape[0]
        return (labels[:, None] == xp.arange(self.num_classes)[None, :]).astype(self.out_dtype)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """The labels are data, not parameters: no gradient. Returns None.
        (A layer *after* this one, a Linear on the one-hot rows, gets
        ``dW = onehotᵀ dy``: rows of the same class add up.)"""
        n = self._cached()
        self._check_dy(dy, (n, self.num_classes))
        return None

    def output_shape(self, input_shape):
        return (self.num_classes,)

    def __repr__(self):
        return f"OneHot({self.num_classes})"


class LabelConcat(Module):
    """``(h, onehot) ↦ [h, y]`` along axis 1.

    * ``h`` of shape ``(N, F)``: the one-hot rows are appended, ``(N, F + C)``;
    * ``h`` of shape ``(N, K, H, W)``: ``C`` constant maps are appended,
      ``(N, K + C, H, W)``, map ``c`` all ones where the label is ``c``, zeros
      elsewhere. A convolution over them adds a learned per-class bias map.

    Backward: every output element is one input element, so the gradient of
    ``h`` is the first ``K`` (or ``F``) channels of ``dy``; the label channels'
    gradient is dropped (labels are data).
    """

    def forward(self, inputs, train=True):
        """Parameters: inputs = (h, onehot (N, C)). Returns: [h, y] along axis 1."""
        h, onehot = inputs
        xp = get_array_module(h)
        if h.shape[0] != onehot.shape[0]:
            raise ValueError(f"LabelConcat: {h.shape[0]} samples but {onehot.shape[0]} labels")
        y = onehot.astype(h.dtype, copy=False)
        if h.ndim == 4:  # label maps: (N, C) → (N, C, H, W), constant over the pixels
            y = xp.broadcast_to(y[:, :, None, None], (h.shape[0], y.shape[1]) + h.shape[2:])
        elif h.ndim != 2:
            raise ValueError(f"LabelConcat: expected (N, F) or (N, K, H, W) features, got shape {tuple(h.shape)}")
        self._cache = (h.shape, onehot.shape[1])
        return xp.concatenate([h, y], axis=1)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """Parameters: dy ``(N, K + C, …)``. Returns: dh = dy[:, :K] (contiguous), or None."""
        shape, c = self._cached()
        self._check_dy(dy, (shape[0], shape[1] + c) + tuple(shape[2:]))
        if not need_dx:
            return None
        return get_array_module(dy).ascontiguousarray(dy[:, :shape[1]])

    def output_shape(self, input_shape):
        (h, c) = input_shape
        return (h[0] + c[0],) + tuple(h[1:])


class LabelSequential(Sequential):
    """A chain of layers on ``(x, labels)``: the labels become one-hot rows
    once, and every :class:`LabelConcat` in the chain appends them to what
    reaches it; every other layer sees only the running activation.

    Parameters
    ----------
    layers : list of Modules (some of them LabelConcat)
    num_classes : int, C
    dtype : the one-hot rows' dtype (the network's)

    Input: ``(x, labels)``. Output: the last layer's output.
    """

    def __init__(self, layers, num_classes, dtype=np.float32):
        super().__init__(layers)
        self.onehot = OneHot(num_classes, dtype)
        self.num_classes = self.onehot.num_classes

    def forward(self, inputs, train=True):
        """Parameters: inputs = (x, labels (N,)). Returns: y."""
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            raise ValueError(f"LabelSequential: expected the tuple (x, labels), got {type(inputs).__name__}")
        x, labels = inputs
        y = self.onehot.forward(labels)
        for layer in self.layers:
            x = layer.forward((x, y), train=train) if isinstance(layer, LabelConcat) else layer.forward(x, train=train)
        return x

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """As :meth:`Sequential.backward` (each LabelConcat hands back only its
        ``h`` part). Returns: ``(dx, None)`` (the labels get none), or None."""
        dx = super().backward(dy, need_dx=need_dx, param_grads=param_grads)
        return (dx, None) if need_dx else None

    def output_shape(self, input_shape):
        shape, c = tuple(input_shape[0]), (self.num_classes,)
        for layer in self.layers:
            shape = layer.output_shape((shape, c)) if isinstance(layer, LabelConcat) else layer.output_shape(shape)
        return shape

    def __repr__(self):
        return f"LabelSequential[{self.num_classes} classes]" + super().__repr__()[len("LabelSequential"):]
