"""Keras's BatchNormalization with bnlib's layer: its defaults, its moving variance, and what ``trainable = False``
means for it, for the practice chapter's freezing section.

Keras 3's layer (``keras.layers.BatchNormalization``) differs from ``torch.nn.BatchNorm*d`` in four ways:

- ``momentum`` is the weight of the old value: ``moving = momentum * moving + (1 - momentum) * batch``, 0.99 by
  default; PyTorch's ``momentum`` is the weight of the new value, 0.1 by default (Keras 0.9);
- ``epsilon`` is 1e-3 by default (PyTorch's ``eps``: 1e-5);
- the moving variance averages the batch variance without Bessel's correction (PyTorch's running variance uses
  ``m / (m - 1)`` times it, ``m`` the values per channel);
- ``trainable = False`` freezes the layer: it then runs in inference mode whatever the ``training`` argument, and
  neither its gamma and beta nor its moving statistics change (Keras's documentation, "About setting
  layer.trainable = False on a BatchNormalization layer"). In PyTorch ``model.train()`` puts every layer back in
  training mode, so an ``eval()`` set on one BN layer before a training loop lasts only until the loop's first
  ``model.train()``.

:class:`KerasBatchNorm` has these conventions (``training`` is the module's mode); :func:`keras_check` measures
the difference they make.
"""

from __future__ import annotations

import torch
from torch import nn

from bnlib import nn as bnn


class KerasBatchNorm(nn.Module):
    """Keras's ``BatchNormalization(momentum=0.99, epsilon=1e-3)`` over the channels (dimension 1) of an
    ``(N, C, ...)`` input, with ``gamma``/``beta`` parameters and ``moving_mean``/``moving_variance`` buffers under
    Keras's names. In training mode with :attr:`trainable` it normalizes with the batch's statistics (bnlib's
    hand-derived backward) and updates the moving ones; otherwise, and always when ``trainable`` is False, with the
    moving statistics."""

    def __init__(self, num_features: int, momentum: float = 0.99, epsilon: float = 1e-3):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be a positive integer, got {num_features!r}.")
        if not 0 <= momentum <= 1 or not epsilon > 0:
            raise ValueError(f"momentum must lie in [0, 1] and epsilon be positive (Keras's ranges), got momentum "
                             f"{momentum!r} and epsilon {epsilon!r}.")
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.gamma = nn.Parameter(torch.ones(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("moving_mean", torch.zeros(num_features))
        self.register_buffer("moving_variance", torch.ones(num_features))
        self._trainable = True

    @property
    def trainable(self) -> bool:
        """Keras's attribute: False freezes the layer (inference mode, no gradient for gamma and beta)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for p in (self.gamma, self.beta):
            p.requires_grad_(self._trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self._trainable:
            with torch.no_grad():
                dims = [0, *range(2, x.dim())]
                mean, var = x.mean(dims), x.var(dims, correction=0)
                self.moving_mean.mul_(self.momentum).add_((1 - self.momentum) * mean)
                self.moving_variance.mul_(self.momentum).add_((1 - self.momentum) * var)
            return bnn.batch_norm(x, None, None, self.gamma, self.beta, training=True, eps=self.epsilon)
        return bnn.batch_norm(x, self.moving_mean, self.moving_variance, self.gamma, self.beta, training=False,
                              eps=self.epsilon)

    def extra_repr(self) -> str:
        return (f"{len(self.gamma)}, momentum={self.momentum:g}, epsilon={self.epsilon:g}, "
                f"trainable={self._trainable}")


def _network(bn: nn.Module, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(784, 32, bias=False), bn, nn.Sigmoid(), nn.Linear(32, 10))


def keras_check(x: torch.Tensor, y: torch.Tensor, steps: int = 20, batch: int = 32, seed: int = 0,
                lr: float = 0.5) -> dict:
    """A layer "frozen" before a training loop that calls ``model.train()`` at every step, as PyTorch loops do, on
    flattened images ``x`` with labels ``y``: a PyTorch BN layer frozen with ``eval()`` and
    ``requires_grad_(False)``, against :class:`KerasBatchNorm` with ``trainable = False``. Returns how far each
    layer's running (moving) mean moved and whether its gamma moved, after ``steps`` SGD steps; and, for one
    training batch of ``batch`` examples, the ratio of PyTorch's running-variance update to Keras's moving-variance
    update at equal momentum (``m / (m - 1)``, ``m`` the batch size), with the largest difference between the
    two layers' training-mode outputs (equal: both normalize with the biased batch variance)."""
    if steps < 1 or batch < 2 or len(x) < steps * batch:
        raise ValueError(f"keras_check needs at least one step, batches of at least 2 and {steps * batch} examples, "
                         f"got {steps} steps, batch {batch} and {len(x)} examples.")
    torch_bn, keras_bn = nn.BatchNorm1d(32, momentum=0.01, eps=1e-3), KerasBatchNorm(32)
    out: dict = {"steps": steps, "batch": batch}
    for name, bn in (("torch", torch_bn), ("keras", keras_bn)):
        net = _network(bn, seed)
        opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=lr)
        for i in range(2):  # two ordinary steps, so that the statistics are not at their initial values
            net.train()
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[i * batch:(i + 1) * batch]), y[i * batch:(i + 1) * batch]).backward()
            opt.step()
        if name == "torch":
            bn.eval()
            bn.weight.requires_grad_(False)
            bn.bias.requires_grad_(False)
        else:
            bn.trainable = False
        mean_key = "running_mean" if name == "torch" else "moving_mean"
        gamma = bn.weight if name == "torch" else bn.gamma
        before_mean, before_gamma = getattr(bn, mean_key).clone(), gamma.detach().clone()
        for i in range(steps):
            net.train()  # the first line of a PyTorch training loop
            opt.zero_grad()
            xb, yb = x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]
            nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
        out[name] = {"mean_moved": float((getattr(bn, mean_key) - before_mean).abs().max()),
                     "gamma_moved": bool(not torch.equal(gamma.detach(), before_gamma))}
    # one training batch through two fresh layers at equal momentum: the variance conventions
    z = torch.randn(batch, 32, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 + 1
    t, k = nn.BatchNorm1d(32, momentum=0.01, eps=1e-3).double().train(), KerasBatchNorm(32).double().train()
    with torch.no_grad():
        yt, yk = t(z), k(z)
    out["var_ratio"] = float(((t.running_var - 0.99) / (k.moving_variance - 0.99)).mean())
    out["out_diff"] = float((yt - yk).abs().max())
    out["mean_diff"] = float((t.running_mean - k.moving_mean).abs().max())
    return out
