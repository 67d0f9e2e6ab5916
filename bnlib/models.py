"""The networks of the book: the paper's sigmoid MLP for MNIST and a sigmoid CNN for CIFAR-10.

Both put the normalization on ``Wu`` right before each nonlinearity, as the paper does
(Sec. 3.2: ``z = g(BN(Wu))``, the layer bias dropped because BN's ``beta`` takes its role).

``norm`` chooses the normalization layer:

- ``None``: no normalization (the layer keeps its bias);
- ``"torch"``: ``torch.nn.BatchNorm1d`` / ``BatchNorm2d``;
- ``"bnlib"``: :class:`bnlib.nn.BatchNorm`, whose gradient is the hand-derived formula;
- ``"layer"``, ``"group"``, ``"renorm"``: Layer Normalization, Group Normalization and Batch
  Renormalization from :mod:`bnlib.norms`;
- ``"noisy"``: BN followed by a :class:`NoisyShift` that injects a random, time-varying shift
  and scale (Santurkar et al.'s "noisy BN").

Every hidden nonlinearity is a :class:`Activation` module, so :class:`Probe` can record its
input (the "pre-activation" the paper plots in its Figure 1) with forward hooks, without
changing the model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from bnlib import _checks as C
from bnlib import norms
from bnlib.nn import BatchNorm

NORMS = (None, "torch", "bnlib", "layer", "group", "renorm", "noisy", "l1", "linf")
ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}


class Activation(nn.Module):
    """A pointwise nonlinearity as a module, so that probes can hook its input."""

    def __init__(self, kind: str = "sigmoid"):
        super().__init__()
        _check_activation("kind", kind)
        self.kind = kind
        self.fn = ACTIVATIONS[kind]

    def forward(self, x):
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.kind


def _check_activation(name: str, kind) -> None:
    if not (isinstance(kind, str) and kind in ACTIVATIONS):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, sorted(ACTIVATIONS)))}, got {kind!r}.")


def _check_norm(norm) -> None:
    C.choice("norm", norm, NORMS)


def _check_dropout(p) -> float:
    return C.number("dropout", p, 0.0, 1.0, hi_open=True, what=" (the probability of zeroing a unit)")


class NoisyShift(nn.Module):
    """Santurkar et al.'s injected covariate shift: ``y = s_t * x + b_t`` after a BN layer.

    In training mode, every forward pass draws a fresh per-unit scale ``s_t`` and shift
    ``b_t`` with non-zero mean and non-unit variance whose means drift with the step count
    (``b_t ~ N(mu_t, v)``, ``s_t ~ U(1, 1 + scale_spread)`` with ``mu_t`` a slow sinusoid),
    so the distribution a layer sees changes at every step. In eval mode it is the identity.
    The random draws use their own generator, seeded, so runs stay deterministic.
    """

    def __init__(self, num_features: int, shift_std: float = 0.5, scale_spread: float = 1.0, seed: int = 0):
        super().__init__()
        self.num_features = C.positive_int("num_features", num_features)
        self.shift_std = C.number("shift_std", shift_std, 0.0)
        self.scale_spread = C.number("scale_spread", scale_spread, 0.0)
        self.generator = torch.Generator().manual_seed(C.non_negative_int("seed", seed))
        self.steps = 0

    def forward(self, x):
        if not self.training:
            return x
        self.steps += 1
        shape = (1, self.num_features) + (1,) * (x.dim() - 2)
        drift = math.sin(self.steps / 200.0)
        shift = drift + self.shift_std * torch.randn(self.num_features, generator=self.generator)
        scale = 1.0 + self.scale_spread * torch.rand(self.num_features, generator=self.generator)
        return x * scale.view(shape).to(x) + shift.view(shape).to(x)


def make_norm(norm: str | None, num_features: int, conv: bool, seed: int = 0) -> nn.Module | None:
    """The normalization layer for ``num_features`` units or feature maps (None for none)."""
    _check_norm(norm)
    num_features = C.positive_int("num_features", num_features)
    C.flag("conv", conv)
    seed = C.non_negative_int("seed", seed)
    if norm is None:
        return None
    if norm == "torch":
        return nn.BatchNorm2d(num_features) if conv else nn.BatchNorm1d(num_features)
    if norm == "bnlib":
        return BatchNorm(num_features)
    if norm == "noisy":
        return nn.Sequential(BatchNorm(num_features), NoisyShift(num_features, seed=seed))
    if norm in ("layer", "group", "renorm"):
        if norm == "layer":
            return norms.LayerNorm(num_features)
        if norm == "group":
            return norms.GroupNorm(group_count(num_features), num_features)
        return norms.BatchRenorm(num_features)
    if norm in ("l1", "linf"):
        return norms.LpNorm(num_features, p=1.0 if norm == "l1" else math.inf)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}.")


def group_count(c: int) -> int:
    """Group Norm's default group count, 32 in Wu & He (2018), reduced to divide C."""
    c = C.positive_int("c", c)
    g = min(32, c)
    while c % g:
        g -= 1
    return g


INITS = ("gaussian", "xavier", "xavier_sigmoid", "kaiming", "torch")


def init_weights(model: nn.Module, init: str = "gaussian", sigma: float = 0.01, seed: int = 0) -> None:
    """Initialize every Linear/Conv2d weight; biases to zero.

    ``init="gaussian"``: N(0, sigma^2), the paper's "small random Gaussian values";
    ``"xavier"``: Glorot normal, ``std = sqrt(2 / (fan_in + fan_out))``, derived for a nonlinearity of slope 1
    at 0 (tanh); ``"xavier_sigmoid"``: the same times 4, for the logistic sigmoid, whose slope at 0 is 1/4
    (Glorot & Bengio, 2010; Bengio, 2012); ``"kaiming"``: He normal (fan-in); ``"torch"``: PyTorch's
    default (uniform, fan-in), drawn from the same seed.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    C.choice("init", init, INITS)
    sigma = C.number("sigma", sigma, 0.0, lo_open=True, what=" (the standard deviation of the weights)")
    gen = torch.Generator().manual_seed(C.non_negative_int("seed", seed))
    for mod in model.modules():
        if not isinstance(mod, (nn.Linear, nn.Conv2d)):
            continue
        w = mod.weight
        fan_in = w[0].numel()
        fan_out = w.shape[0] * (w[0][0].numel() if w.dim() > 2 else 1)
        with torch.no_grad():
            if init == "gaussian":
                std = sigma
            elif init in ("xavier", "xavier_sigmoid"):
                std = math.sqrt(2.0 / (fan_in + fan_out)) * (4.0 if init == "xavier_sigmoid" else 1.0)
            elif init == "kaiming":
                std = math.sqrt(2.0 / fan_in)
            elif init == "torch":
                bound = 1.0 / math.sqrt(fan_in)
                w.copy_(torch.rand(w.shape, generator=gen) * 2 * bound - bound)
                std = None
            else:
                raise ValueError(f"init must be 'gaussian', 'xavier', 'kaiming' or 'torch', got {init!r}.")
            if std is not None:
                w.copy_(torch.randn(w.shape, generator=gen) * std)
            if mod.bias is not None:
                mod.bias.zero_()


class SigmoidMLP(nn.Module):
    """Fully connected network ``sizes[0] -> ... -> sizes[-1]``; normalization before each hidden nonlinearity.

    The paper's MNIST network is ``SigmoidMLP((784, 100, 100, 100, 10))``. ``norm_position="post"``
    puts the normalization after the nonlinearity instead (as in many Keras examples); the
    layer then keeps its bias.
    """

    def __init__(
        self,
        sizes: Iterable[int] = (784, 100, 100, 100, 10),
        norm: str | None = None,
        activation: str = "sigmoid",
        dropout: float = 0.0,
        seed: int = 0,
        norm_position: str = "pre",
    ):
        super().__init__()
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Iterable):
            raise TypeError(f"sizes must be a sequence of layer sizes, got {type(sizes).__name__} {sizes!r}.")
        sizes = tuple(sizes)
        if norm_position not in ("pre", "post"):
            raise ValueError(f"norm_position must be 'pre' (before the nonlinearity) or 'post', got {norm_position!r}.")
        if len(sizes) < 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
                                     for s in sizes):
            raise ValueError(f"sizes must list at least an input and an output size, all positive integers, "
                             f"got {sizes}.")
        sizes = tuple(int(s) for s in sizes)
        _check_norm(norm)
        _check_activation("activation", activation)
        dropout = _check_dropout(dropout)
        seed = C.non_negative_int("seed", seed)
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (a, b) in enumerate(zip(sizes[:-2], sizes[1:-1], strict=True)):
            layers.append(nn.Linear(a, b, bias=norm is None or norm_position == "post"))
            n = make_norm(norm, b, conv=False, seed=seed + i)
            if n is not None and norm_position == "pre":
                layers.append(n)
            layers.append(Activation(activation))
            if n is not None and norm_position == "post":
                layers.append(n)
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class SigmoidCNN(nn.Module):
    """A VGG-style CNN for 32x32x3 images: ``depth`` 3x3 convolutions, each followed by
    normalization per feature map and the nonlinearity; 2x2 max-pooling after every
    ``pool_every`` convolutions (at most three times); global average pooling; a linear
    classifier. Channel widths double at each pooling, starting from ``width``.
    """

    def __init__(
        self,
        depth: int = 6,
        width: int = 16,
        norm: str | None = None,
        activation: str = "sigmoid",
        dropout: float = 0.0,
        num_classes: int = 10,
        in_channels: int = 3,
        pool_every: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        depth, width = C.positive_int("depth", depth), C.positive_int("width", width)
        num_classes = C.positive_int("num_classes", num_classes)
        in_channels = C.positive_int("in_channels", in_channels)
        if pool_every is not None:
            pool_every = C.positive_int("pool_every", pool_every)
        _check_norm(norm)
        _check_activation("activation", activation)
        dropout = _check_dropout(dropout)
        seed = C.non_negative_int("seed", seed)
        pool_every = pool_every or max(1, math.ceil(depth / 3))
        layers: list[nn.Module] = []
        c_in, c, pools = in_channels, width, 0
        for i in range(depth):
            layers.append(nn.Conv2d(c_in, c, 3, padding=1, bias=norm is None))
            n = make_norm(norm, c, conv=True, seed=seed + i)
            if n is not None:
                layers.append(n)
            layers.append(Activation(activation))
            c_in = c
            if (i + 1) % pool_every == 0 and pools < 3 and i + 1 < depth:
                layers.append(nn.MaxPool2d(2))
                pools += 1
                c *= 2
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(c_in, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def activations(model: nn.Module) -> list[Activation]:
    """The hidden nonlinearities of ``model``, in order (layer 0 is the first hidden layer)."""
    return [m for m in model.modules() if isinstance(m, Activation)]


def bn_layers(model: nn.Module) -> list[nn.Module]:
    """The BN layers of ``model`` (``torch.nn.BatchNorm1d``/``2d`` and ``bnlib.nn.BatchNorm``), in order."""
    kinds = (nn.BatchNorm1d, nn.BatchNorm2d, BatchNorm)
    return [m for m in model.modules() if isinstance(m, kinds)]


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The Linear/Conv2d layers of ``model`` in order (for gradient norms per layer)."""
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


class Probe:
    """Record the input of chosen nonlinearities during forward passes, without changing the model.

    >>> with Probe(model, layers=[0, 2]) as probe:
    ...     model(x)
    >>> probe.inputs[2]            # tensor of shape (N, units) or (N, C, H, W)

    Only the last forward pass is kept. ``layers=None`` hooks every hidden layer.
    """

    def __init__(self, model: nn.Module, layers: Iterable[int] | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
        if layers is not None and (isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable)):
            raise TypeError(f"layers must be a list of hidden-layer indices or None, got {type(layers).__name__}.")
        acts = activations(model)
        self.layers = list(range(len(acts))) if layers is None else list(layers)
        bad = [i for i in self.layers
               if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < len(acts)]
        if bad:
            raise ValueError(f"layers must be indices of the model's hidden layers 0..{len(acts) - 1}, got {bad}.")
        self.layers = [int(i) for i in self.layers]
        self._acts = acts
        self._handles: list = []
        self.inputs: dict[int, torch.Tensor] = {}

    def __enter__(self) -> Probe:
        for i in self.layers:
            self._handles.append(self._acts[i].register_forward_hook(self._hook(i)))
        return self

    def _hook(self, i: int):
        def hook(_module, args, _output):
            self.inputs[i] = args[0].detach()

        return hook

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def build(model: str, norm: str | None = None, **kwargs) -> nn.Module:
    """Build ``"mlp"`` (:class:`SigmoidMLP`) or ``"cnn"`` (:class:`SigmoidCNN`) by name."""
    C.choice("model", model, ("mlp", "cnn"))
    _check_norm(norm)
    if model == "mlp":
        return SigmoidMLP(norm=norm, **kwargs)
    if model == "cnn":
        return SigmoidCNN(norm=norm, **kwargs)
    raise ValueError(f"model must be 'mlp' or 'cnn', got {model!r}.")
