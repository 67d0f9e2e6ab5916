"""The geometry of training with BN, measured: the norm of scale-invariant weights under SGD, the angular
update at the weight-decay equilibrium, weight decay as an exponentially growing learning rate, and the
per-layer growth of gradients at initialization in deep BN networks.

Every weight matrix that feeds a BN layer (the hidden Linear/Conv2d layers of :mod:`bnlib.models` with a norm;
they carry no bias) makes the loss *scale invariant* in each of its rows: ``L(a w) = L(w)`` for ``a > 0``
(exactly for epsilon = 0; the functions here use an epsilon far below float64 resolution where the point is
exactness). Such weights are called *invariant* below; every other parameter (BN's gamma and beta, the output
layer) is left as it is.

The training loops here are deliberately small and explicit (one batch sampler, plain ``torch.optim.SGD``)
rather than the engine's: each measures one identity along a run, step by step.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn

from bnlib import _checks as C
from bnlib import data, models
from bnlib.threads import one_thread

ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")

#: An epsilon below float64 resolution for pre-activation variances of order 1e-2 or more: BN with it is scale
#: invariant to rounding, while torch still accepts it in training (it refuses epsilon = 0).
TINY_EPS = 1e-20


# --------------------------------------------------------------------------- helpers
def _one_thread(fn):
    """``fn`` run with one intra-op thread, as the engine trains (:func:`bnlib.threads.one_thread`)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with one_thread():
            return fn(*args, **kwargs)
    return wrapper


def invariant_weights(model: nn.Module) -> list[nn.Parameter]:
    """The weights of ``model``'s Linear/Conv2d layers whose output goes straight into a BN layer (every hidden
    layer of a :mod:`bnlib.models` network with ``norm`` set and ``norm_position="pre"``): the loss is
    invariant to scaling any of their rows."""
    mods = list(model.modules())
    out = []
    kinds = (nn.BatchNorm1d, nn.BatchNorm2d)
    for i, m in enumerate(mods[:-1]):
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is None and isinstance(mods[i + 1], kinds):
            out.append(m.weight)
    if not out:
        raise ValueError("the model has no bias-free Linear/Conv2d layer followed by a BN layer, so no weights "
                         "are scale invariant; build it with norm='torch'.")
    return out


def _rows(w: torch.Tensor) -> torch.Tensor:
    return w.reshape(w.shape[0], -1)


def _rotation(w0: torch.Tensor, w1: torch.Tensor) -> torch.Tensor:
    """The angle (radians) by which each row turned from ``w0`` to ``w1``."""
    cos = (w0 * w1).sum(1) / (w0.norm(dim=1) * w1.norm(dim=1))
    return torch.arccos(cos.clamp(-1.0, 1.0))


def _sgd(model: nn.Module, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    """SGD with ``weight_decay`` on the invariant weights only (group 0); every other parameter (group 1) none."""
    inv = invariant_weights(model)
    ids = {id(p) for p in inv}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return torch.optim.SGD([{"params": inv, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                           lr=lr, momentum=momentum)


def _set_eps(model: nn.Module, eps: float) -> None:
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.eps = eps


@functools.lru_cache(maxsize=2)
def _train_split(name: str):
    """The training images and labels of ``name``, read once per process (they are not modified)."""
    return (data.load_mnist() if name == "mnist" else data.load_cifar10())[0]


def _dataset(name: str, n: int, dtype: torch.dtype):
    """The first ``n`` training images of ``name`` ("mnist" or "cifar10") in [0, 1], flattened for MNIST."""
    C.choice("dataset", name, ("mnist", "cifar10"))
    x, y = _train_split(name)
    xt, yt = data.to_tensors(x[:n], y[:n], name, flatten=name == "mnist", normalize=name == "cifar10")
    return xt.to(dtype), yt


def _model(name: str, seed: int, dtype: torch.dtype, eps: float, sigma: float = 0.1) -> nn.Module:
    if name == "mnist":
        m = models.build("mlp", norm="torch", sizes=(784, 100, 100, 100, 10), seed=seed)
        models.init_weights(m, "gaussian", sigma, seed)
    else:
        m = models.build("cnn", norm="torch", depth=3, width=8, seed=seed)
        models.init_weights(m, "xavier", seed=seed)
    _set_eps(m, eps)
    return m.to(dtype)


def _batches(n: int, batch: int, steps: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, n, (batch,), generator=g) for _ in range(steps)]


def _check_common(lr, steps, seed):
    lr = C.number("lr", lr, 0.0, lo_open=True, what=" (the learning rate)")
    steps = C.positive_int("steps", steps)
    seed = C.non_negative_int("seed", seed)
    return lr, steps, seed


# --------------------------------------------------------------------------- norm growth without weight decay
@_one_thread
def norm_growth(steps: int = 200, lr: float = 0.5, seed: int = 0, batch: int = 60, eps: float = TINY_EPS,
                init_sigma: float = 0.1) -> dict:
    """Plain SGD (no momentum, no weight decay) on the MNIST MLP with BN (weights N(0, init_sigma^2)), in float64.

    At every step and for every row ``w`` of every invariant weight, compares ``||w_{t+1}||^2`` with
    ``||w_t||^2 + lr^2 ||g_t||^2`` and records ``<w_t, g_t> / (||w_t|| ||g_t||)``. Returns ``growth_rel`` (largest
    relative error of the identity), ``cos_max`` (largest |cosine| between a row and its gradient), and per step
    (lists of length ``steps``, means over the rows of all layers): ``norm2`` (``||w_t||^2`` before the step),
    ``angle`` (the rotation of the row in the step, radians), ``eff_lr`` (``lr / ||w_t||^2``) and ``loss``.
    """
    lr, steps, seed = _check_common(lr, steps, seed)
    init_sigma = C.number("init_sigma", init_sigma, 0.0, lo_open=True)
    torch.manual_seed(seed)
    x, y = _dataset("mnist", 10_000, torch.float64)
    model = _model("mnist", seed, torch.float64, eps, init_sigma)
    inv = invariant_weights(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    out = {k: [] for k in ("norm2", "angle", "eff_lr", "loss")}
    growth_rel = cos_max = 0.0
    for idx in _batches(len(x), batch, steps, seed):
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        before = [_rows(w).detach().clone() for w in inv]
        grads = [_rows(w.grad).detach().clone() for w in inv]
        opt.step()
        n2, ang = [], []
        for w0, g, w in zip(before, grads, inv, strict=True):
            w1 = _rows(w).detach()
            a2, b2 = (w0 * w0).sum(1), (w1 * w1).sum(1)
            pred = a2 + lr**2 * (g * g).sum(1)
            growth_rel = max(growth_rel, float(((b2 - pred).abs() / b2).max()))
            cos_max = max(cos_max, float(((w0 * g).sum(1).abs() / (a2.sqrt() * g.norm(dim=1))).max()))
            n2.append(a2)
            ang.append(_rotation(w0, w1))
        n2, ang = torch.cat(n2), torch.cat(ang)
        out["norm2"].append(float(n2.mean()))
        out["angle"].append(float(ang.mean()))
        out["eff_lr"].append(float((lr / n2).mean()))
        out["loss"].append(loss.item())
    return {"growth_rel": growth_rel, "cos_max": cos_max, "lr": lr, "steps": steps, "eps": eps,
            "init_sigma": init_sigma, **out}


# --------------------------------------------------------------------------- the weight-decay equilibrium
def predicted_angle(lr: float, weight_decay: float, momentum: float = 0.0) -> float:
    r"""The angular update per step at equilibrium, :math:`\sqrt{2\eta\lambda/(1+\mu)}` (radians)."""
    return math.sqrt(2 * lr * weight_decay / (1 + momentum))


@_one_thread
def equilibrium(dataset: str = "mnist", lr: float = 0.1, weight_decay: float = 5e-3, momentum: float = 0.9,
                steps: int = 1500, seed: int = 0, batch: int = 60, n_train: int = 10_000) -> dict:
    """SGD with momentum and weight decay on the invariant weights only (BN's gamma, beta and the output layer
    get none), float32, on ``dataset``'s MNIST MLP (784-100-100-100-10) or CIFAR-10 CNN (3 sigmoid conv layers of 8
    channels) with BN.

    Returns per step (means over the rows of every invariant weight) ``angle`` (rotation in the step, radians)
    and ``norm2``; ``measured`` (the mean angle over the second half of the run), ``predicted``
    (:func:`predicted_angle`) and their ``ratio``.
    """
    lr, steps, seed = _check_common(lr, steps, seed)
    weight_decay = C.number("weight_decay", weight_decay, 0.0, lo_open=True)
    momentum = C.number("momentum", momentum, 0.0, 1.0, hi_open=True)
    torch.manual_seed(seed)
    x, y = _dataset(dataset, n_train, torch.float32)
    model = _model(dataset, seed, torch.float32, 1e-5)
    inv, opt = invariant_weights(model), _sgd(model, lr, momentum, weight_decay)
    angle, norm2 = [], []
    for idx in _batches(len(x), batch, steps, seed):
        before = [_rows(w).detach().clone() for w in inv]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        a, n = [], []
        for w0, w in zip(before, inv, strict=True):
            w1 = _rows(w).detach()
            a.append(_rotation(w0, w1))
            n.append((w1 * w1).sum(1))
        angle.append(float(torch.cat(a).mean()))
        norm2.append(float(torch.cat(n).mean()))
    measured, predicted = float(np.mean(angle[steps // 2:])), predicted_angle(lr, weight_decay, momentum)
    return {"dataset": dataset, "lr": lr, "weight_decay": weight_decay, "momentum": momentum, "angle": angle,
            "norm2": norm2, "measured": measured, "predicted": predicted, "ratio": measured / predicted}


# --------------------------------------------------------------------------- weight decay = exponential rate
def equivalent_schedule(lrs, weight_decay: float, momentum: float) -> tuple[np.ndarray, np.ndarray]:
    r"""The scale factors :math:`c_t` and learning rates :math:`\tilde\eta_t` that make SGD *without* weight decay
    on the invariant weights follow SGD with it, divided by :math:`c_t` (momentum :math:`\mu` in torch's form,
    :math:`b_t = \mu b_{t-1} + g_t`, :math:`w_{t+1} = w_t - \eta_t b_t`):

    :math:`c_0 = 1`, :math:`c_1 = 1 - \eta_0\lambda`,
    :math:`c_{t+1} = (1 - \eta_t\lambda + \mu r_t)\,c_t - \mu r_t\,c_{t-1}` with :math:`r_t = \eta_t/\eta_{t-1}`,
    and :math:`\tilde\eta_t = \eta_t/(c_t c_{t+1})`. For a constant rate, :math:`c_t` is a combination of
    :math:`\alpha^t` for the roots :math:`\alpha` of :math:`\alpha^2 - (1 + \mu - \eta\lambda)\alpha + \mu = 0`
    (Li & Arora, 2020). Returns ``(c, lr_tilde)`` with ``len(lrs) + 1`` and ``len(lrs)`` entries.
    """
    lrs = np.asarray(lrs, dtype=np.float64)
    if lrs.ndim != 1 or len(lrs) < 1 or not np.all(lrs > 0):
        raise ValueError("lrs must be a non-empty list of positive learning rates, one per step.")
    weight_decay = C.number("weight_decay", weight_decay, 0.0)
    momentum = C.number("momentum", momentum, 0.0, 1.0, hi_open=True)
    c = np.empty(len(lrs) + 1)
    c[0], c[1] = 1.0, 1.0 - lrs[0] * weight_decay
    for t in range(1, len(lrs)):
        r = lrs[t] / lrs[t - 1]
        c[t + 1] = (1.0 - lrs[t] * weight_decay + momentum * r) * c[t] - momentum * r * c[t - 1]
    if np.any(c <= 0):
        raise ValueError("the scale factors c_t reach zero: lr * weight_decay is too large for an equivalent run.")
    return c, lrs / (c[:-1] * c[1:])


@_one_thread
def exp_lr_check(steps: int = 200, lr: float = 0.1, weight_decay: float = 5e-3, momentum: float = 0.9,
                 decay_at: int = 100, decay: float = 0.1, seed: int = 0, batch: int = 60,
                 compensate: bool = True) -> dict:
    """Two float64 copies of the MNIST MLP with BN (epsilon :data:`TINY_EPS`), trained on the same batches:
    A by SGD with momentum, weight decay on the invariant weights and a step schedule (``lr`` times ``decay``
    from step ``decay_at``); B by SGD with the same momentum, no weight decay, the invariant weights at the rates
    of :func:`equivalent_schedule`. Every other parameter gets the same rate, and no decay, in both.

    Returns ``out_rel`` (largest relative difference of the two networks' training-mode outputs over all steps),
    ``weight_rel`` (largest relative difference between B's invariant weights and A's divided by ``c_t``),
    ``c`` and ``lr_tilde`` (the schedule) and ``steps``. ``compensate=False`` is the control: B's invariant
    weights train at A's own rates, without weight decay, and the two networks part.
    """
    lr, steps, seed = _check_common(lr, steps, seed)
    decay_at = C.non_negative_int("decay_at", decay_at)
    decay = C.number("decay", decay, 0.0, lo_open=True)
    compensate = C.flag("compensate", compensate)
    lrs = np.array([lr * (decay if t >= decay_at else 1.0) for t in range(steps)])
    c, lr_tilde = equivalent_schedule(lrs, weight_decay, momentum)
    torch.manual_seed(seed)
    x, y = _dataset("mnist", 10_000, torch.float64)
    nets, opts = [], []
    for with_decay in (True, False):
        model = _model("mnist", seed, torch.float64, TINY_EPS)
        opts.append(_sgd(model, lr, momentum, weight_decay if with_decay else 0.0))
        nets.append(model)
    out_rel = weight_rel = 0.0
    for t, idx in enumerate(_batches(len(x), batch, steps, seed)):
        outs = []
        for k, (model, opt) in enumerate(zip(nets, opts, strict=True)):
            opt.param_groups[0]["lr"] = float(lrs[t] if k == 0 or not compensate else lr_tilde[t])
            opt.param_groups[1]["lr"] = float(lrs[t])
            z = model(x[idx])
            loss = nn.functional.cross_entropy(z, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            outs.append(z.detach())
        out_rel = max(out_rel, float((outs[0] - outs[1]).abs().max() / outs[1].abs().max()))
        for wa, wb in zip(invariant_weights(nets[0]), invariant_weights(nets[1]), strict=True):
            wa_scaled = wa.detach() / c[t + 1]
            weight_rel = max(weight_rel, float((wa_scaled - wb.detach()).abs().max() / wb.detach().abs().max()))
    return {"out_rel": out_rel, "weight_rel": weight_rel, "c": c.tolist(), "lr_tilde": lr_tilde.tolist(),
            "steps": steps, "lr": lr, "weight_decay": weight_decay, "momentum": momentum, "decay_at": decay_at,
            "decay": decay}


# --------------------------------------------------------------------------- gradients at initialization
def predicted_rate(activation: str, batch: int) -> float | None:
    r"""Yang et al. (2019)'s per-layer growth factor of the squared weight-gradient norm, going backward, in a
    wide BN network at initialization: :math:`(B-2)/(B-3)` for a linear network with batch :math:`B > 3`;
    :math:`\pi/(\pi-1)` for ReLU in the large-batch limit; None where the paper gives no closed form here."""
    C.choice("activation", activation, ACTIVATIONS)
    batch = C.positive_int("batch", batch)
    if activation == "linear":
        return (batch - 2) / (batch - 3) if batch > 3 else None
    if activation == "relu":
        return math.pi / (math.pi - 1)
    return None


#: The weight gain of the networks without BN (weights N(0, gain^2 / fan-in)): He et al.'s sqrt(2) for ReLU, 1 for
#: tanh and linear (slope 1 at 0), 4 for the logistic sigmoid (slope 1/4 at 0), each the critical value at which a
#: linearized network neither grows nor shrinks its signal.
NO_BN_GAIN = {"relu": math.sqrt(2.0), "tanh": 1.0, "sigmoid": 4.0, "linear": 1.0}


def _deep(width: int, depth: int, seed: int, gain: float):
    g = torch.Generator().manual_seed(seed)
    ws = [torch.randn(width, 784 if i == 0 else width, generator=g, dtype=torch.float64) for i in range(depth)]
    ws = [(w * gain / math.sqrt(w.shape[1])).requires_grad_(True) for w in ws]
    out = (torch.randn(10, width, generator=g, dtype=torch.float64) / math.sqrt(width)).requires_grad_(True)
    return ws, out


def _grad_norms(ws, out, x, y, act, bn: bool):
    f = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": lambda z: z}[act]
    h = x
    for w in ws:
        z = h @ w.T
        h = f((z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5) if bn else z)
    loss = nn.functional.cross_entropy(h @ out.T, y)
    grads = torch.autograd.grad(loss, ws + [out])
    return grads, [float((gr * gr).sum()) for gr in grads[:-1]]


def fitted_rate(norms2, skip: int = 5) -> float:
    """The per-layer growth factor of squared gradient norms going backward: ``exp(-slope)`` of a least-squares
    line through ``log norms2`` against the layer index, leaving out ``skip`` layers at each end."""
    n = np.log(np.asarray(norms2, dtype=np.float64))
    if len(n) < 2 * skip + 2:
        raise ValueError(f"need at least {2 * skip + 2} layers to fit a rate with skip={skip}, got {len(n)}.")
    idx = np.arange(len(n))[skip:len(n) - skip]
    return float(math.exp(-np.polyfit(idx, n[skip:len(n) - skip], 1)[0]))


@_one_thread
def gradient_growth(activation: str = "relu", batch: int = 64, depth: int = 50, width: int = 256, seed: int = 0,
                    step_lr: float = 0.1, bn: bool = True) -> dict:
    """A deep fully connected BN network at initialization (bias-free layers of ``width`` units, weights
    N(0, 1/fan-in), BN with gamma = 1, beta = 0, then ``activation``; float64) on one batch of ``batch`` MNIST
    images with their labels: the squared norm of the loss gradient for each layer's weights (``norms2``, first
    layer first) and its fitted per-layer rate (:func:`fitted_rate`); then the same on a second batch after
    one SGD step of ``step_lr`` on the first (``norms2_after``, ``rate_after``). ``bn=False``: the same network
    without BN, weights N(0, gain^2/fan-in) with :data:`NO_BN_GAIN`."""
    C.choice("activation", activation, ACTIVATIONS)
    batch, depth, width = C.positive_int("batch", batch), C.positive_int("depth", depth), C.positive_int("width", width)
    if batch < 4:
        raise ValueError(f"batch must be at least 4 (BN of a batch of 1 is undefined), got {batch}.")
    seed = C.non_negative_int("seed", seed)
    bn = C.flag("bn", bn)
    x, y = _train_split("mnist")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), size=2 * batch, replace=False)
    xt = torch.tensor(x[pick].reshape(2 * batch, -1) / 255.0, dtype=torch.float64)
    yt = torch.tensor(y[pick], dtype=torch.int64)
    ws, out = _deep(width, depth, seed, 1.0 if bn else NO_BN_GAIN[activation])
    grads, before = _grad_norms(ws, out, xt[:batch], yt[:batch], activation, bn)
    with torch.no_grad():
        for p, gr in zip(ws + [out], grads, strict=True):
            p -= step_lr * gr
    _, after = _grad_norms(ws, out, xt[batch:], yt[batch:], activation, bn)
    return {"activation": activation, "batch": batch, "depth": depth, "width": width, "bn": bn, "step_lr": step_lr,
            "norms2": before,
            "rate": fitted_rate(before), "norms2_after": after, "rate_after": fitted_rate(after),
            "predicted": predicted_rate(activation, batch) if bn else None}


# --------------------------------------------------------------------------- what the ledger's three rows measure
#: The settings of the three ledger rows (:mod:`bnlib.reports.rules`: EXPLODES, DECAY_IS_LR, DECAY_CONTROLS_LR).
LEDGER_SEEDS = (0, 1, 2, 3, 4)
LEDGER_GROWTH = {"batch": 64, "depth": 50, "width": 128}
LEDGER_DECAY = {"steps": 200, "lr": 0.1, "weight_decay": 5e-3, "momentum": 0.9, "decay_at": 100, "decay": 0.1}
LEDGER_EQUILIBRIUM = {"dataset": "mnist", "lr": 0.1, "weight_decay": 1e-2, "momentum": 0.9, "steps": 800,
                      "n_train": 10_000}


def ledger_measurements(seeds=LEDGER_SEEDS) -> dict:
    """The numbers behind the geometry chapter's three ledger rows, shared by that chapter and the claims chapter:
    ``"growth"`` (for ReLU and tanh, :func:`gradient_growth`'s rate per seed with BN, ``"bn"``, and without,
    ``"none"``), ``"decay"`` (:func:`exp_lr_check` with ``control_out_rel``, its control's output difference) and
    ``"equilibrium"`` (:func:`equilibrium`'s ``ratios`` and ``measured`` per seed, and ``predicted``)."""
    seeds = [C.non_negative_int("seed", s) for s in seeds]
    growth = {act: {key: [gradient_growth(act, seed=s, bn=bn, **LEDGER_GROWTH)["rate"] for s in seeds]
                    for key, bn in (("bn", True), ("none", False))} for act in ("relu", "tanh")}
    decay = exp_lr_check(**LEDGER_DECAY)
    decay["control_out_rel"] = exp_lr_check(**LEDGER_DECAY, compensate=False)["out_rel"]
    runs = [equilibrium(seed=s, **LEDGER_EQUILIBRIUM) for s in seeds]
    eq = {"ratios": [r["ratio"] for r in runs], "measured": [r["measured"] for r in runs],
          "predicted": runs[0]["predicted"], "runs": runs}
    return {"growth": growth, "decay": decay, "equilibrium": eq}
