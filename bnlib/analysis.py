"""Measurements on a network during and after training, beyond the standard recorders.

Two kinds, both named so that a :class:`bnlib.train.RunConfig` can ask for them:

- :data:`RECORDERS` run at every record step on the current mini-batch and return a small
  dict: ``"ics"`` (Santurkar et al.'s internal covariate shift: how much a layer's gradient
  changes when the layers before it take their update) and ``"landscape"`` (loss and
  gradient along the gradient direction: loss range, gradient predictiveness, effective
  beta-smoothness).
- :data:`ANALYSES` run once on the trained model and return a dict: ``"population"``
  (Algorithm 2 vs running averages vs a calibration pass), ``"test_batches"`` (accuracy
  with batch statistics by test-batch size and for one-class batches), ``"fold"`` (BN folded
  into the preceding layers: max output difference and speed-up).

Every measurement leaves the model exactly as it found it (parameters, buffers, mode).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from bnlib import functional as F
from bnlib import models
from bnlib.evaluate import evaluate, mode
from bnlib.models import bn_layers


@contextmanager
def preserved(model: nn.Module):
    """Restore parameters, buffers and train/eval mode of ``model`` on exit."""
    state = copy.deepcopy(model.state_dict())
    modes = [m.training for m in model.modules()]
    noisy = [(m, m.steps, m.generator.get_state()) for m in model.modules() if isinstance(m, models.NoisyShift)]
    try:
        yield model
    finally:
        model.load_state_dict(state)
        for m, t in zip(model.modules(), modes, strict=True):
            m.training = t
        for m, steps, gen_state in noisy:
            m.steps = steps
            m.generator.set_state(gen_state)


def _loss(model, x, y):
    return nn.functional.cross_entropy(model(x), y)


def _flat_grads(params) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in params])


# --------------------------------------------------------------------------- recorders
def record_ics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float) -> dict:
    """Internal covariate shift as Santurkar et al. (2018) define it, for every weight layer i >= 1.

    ``G`` is the gradient of layer i's weights at the current parameters; ``G'`` the same
    gradient after every earlier layer took its SGD step (learning rate ``lr``) on the same
    batch while layer i stayed put. Returns ``l2[i] = ||G - G'||`` and ``cos[i] = <G, G'> /
    (||G|| ||G'||)`` (layer 0 has no earlier layers: ``None``).
    """
    layers = models.weight_layers(model)
    l2, cos = [None], [None]
    with preserved(model), mode(model, "batch"):
        model.zero_grad()
        _loss(model, x, y).backward()
        grads = [(m.weight.grad.clone(), m.bias.grad.clone() if m.bias is not None else None) for m in layers]
        base_state = copy.deepcopy(model.state_dict())
        for i in range(1, len(layers)):
            model.load_state_dict(base_state)
            with torch.no_grad():
                for j in range(i):
                    gw, gb = grads[j]
                    layers[j].weight -= lr * gw
                    if gb is not None:
                        layers[j].bias -= lr * gb
                # the normalization layers between them take their step too
                for p in _norm_params_before(model, layers[i]):
                    if p.grad is not None:
                        p -= lr * p.grad
            model.zero_grad()
            _loss(model, x, y).backward()
            g, g2 = grads[i][0].reshape(-1), layers[i].weight.grad.reshape(-1)
            l2.append(float((g - g2).norm()))
            cos.append(float(torch.dot(g, g2) / (g.norm() * g2.norm() + 1e-30)))
        model.zero_grad()
    return {"l2": l2, "cos": cos}


def _norm_params_before(model: nn.Module, layer: nn.Module) -> list[torch.nn.Parameter]:
    params, wl = [], set(map(id, models.weight_layers(model)))
    for m in model.modules():
        if m is layer:
            break
        if id(m) not in wl and not list(m.children()):
            params += list(m.parameters(recurse=False))
    return params


LANDSCAPE_STEPS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


def record_landscape(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float) -> dict:
    """The loss and its gradient along the gradient direction (Santurkar et al., Sec. 3.1).

    From the current parameters ``w`` with gradient ``g`` on the batch, step to ``w - eta g``
    for ``eta`` in ``lr * LANDSCAPE_STEPS`` and record: the loss there (``loss``), the l2
    change of the gradient ``||g(w - eta g) - g(w)||`` (``grad_change``, gradient
    predictiveness), and the effective beta-smoothness ``max_eta ||g(w - eta g) - g(w)|| /
    ||eta g||`` (``beta``). ``loss_range`` is max - min of the loss over the steps.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    with preserved(model), mode(model, "batch"):
        model.zero_grad()
        loss0 = _loss(model, x, y)
        loss0.backward()
        g0 = _flat_grads(params)
        w0 = [p.detach().clone() for p in params]
        losses, changes, betas = [], [], []
        for k in LANDSCAPE_STEPS:
            eta = lr * k
            with torch.no_grad():
                for p, w, gp in zip(params, w0, _split(g0, params), strict=True):
                    p.copy_(w - eta * gp)
            model.zero_grad()
            loss = _loss(model, x, y)
            loss.backward()
            g = _flat_grads(params)
            losses.append(loss.item())
            change = float((g - g0).norm())
            changes.append(change)
            betas.append(change / (eta * float(g0.norm()) + 1e-30))
        model.zero_grad()
    finite = [v for v in losses if np.isfinite(v)]
    return {"loss0": loss0.item(), "loss": losses, "loss_range": (max(finite) - min(finite)) if finite else None,
            "grad_change": changes, "beta": max(betas)}


def _split(flat: torch.Tensor, params) -> list[torch.Tensor]:
    out, i = [], 0
    for p in params:
        out.append(flat[i : i + p.numel()].view_as(p))
        i += p.numel()
    return out


def noisy_shift_draws(num_features: int, seed: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The per-unit scale ``s_t`` and shift ``b_t`` that ``NoisyShift(num_features, seed=seed)`` applies at
    training steps ``t = 1 .. steps``: two float64 arrays of shape ``(steps, num_features)``.

    The module itself is run (in training mode, on the inputs 0 and 1), so the draws are the
    ones training used: the engine calls each NoisyShift once per training step and never
    otherwise in training mode (recorders and evaluations switch the noise off).
    """
    for name, v in (("num_features", num_features), ("steps", steps)):
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}.")
    layer = models.NoisyShift(int(num_features), seed=int(seed)).train()
    probe = torch.stack([torch.zeros(num_features, dtype=torch.float64), torch.ones(num_features, dtype=torch.float64)])
    scale, shift = np.empty((steps, num_features)), np.empty((steps, num_features))
    with torch.no_grad():
        for t in range(steps):
            y = layer(probe).numpy()
            shift[t], scale[t] = y[0], y[1] - y[0]
    return scale, shift



def noisy_run_draws(config: dict) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """:func:`noisy_shift_draws` of every hidden layer of a noisy-BN MLP run, from its configuration
    (layer ``i`` has ``sizes[i + 1]`` units and seed ``seed + i``), for steps 1 .. ``steps + 1``."""
    if config.get("norm") != "noisy" or config.get("model", "mlp") != "mlp":
        raise ValueError(f"noisy_run_draws needs a noisy-BN MLP run, got norm={config.get('norm')!r}, "
                         f"model={config.get('model', 'mlp')!r}.")
    sizes = config["sizes"]
    return {i: noisy_shift_draws(int(sizes[i + 1]), int(config["seed"]) + i, int(config["steps"]) + 1)
            for i in range(len(sizes) - 2)}


RECORDERS: dict[str, Callable] = {"ics": record_ics, "landscape": record_landscape}


# --------------------------------------------------------------------------- analyses after training
@torch.no_grad()
def batch_moments(model: nn.Module, x: torch.Tensor, batch_size: int, max_batches: int | None = None):
    """Per BN layer, the mean and biased variance of its input on each training mini-batch.

    The network runs in training mode (as during training), running statistics untouched.
    Returns a list (one per BN layer) of ``(means, vars)`` arrays of shape ``(K, C)``.
    """
    bns = bn_layers(model)
    seen: list[list] = [[] for _ in bns]

    def hook(i):
        def h(_m, args, _out):
            z = args[0].double()
            dims = [0] + list(range(2, z.dim()))
            v, mu = torch.var_mean(z, dim=dims, correction=0)
            seen[i].append((mu.numpy(), v.numpy()))

        return h

    with preserved(model), mode(model, "batch"):
        handles = [b.register_forward_hook(hook(i)) for i, b in enumerate(bns)]
        try:
            n = len(x) // batch_size
            for k in range(n if max_batches is None else min(n, max_batches)):
                model(x[k * batch_size : (k + 1) * batch_size])
        finally:
            for h in handles:
                h.remove()
    return [(np.stack([a for a, _ in s]), np.stack([b for _, b in s])) for s in seen]


def analysis_population(model: nn.Module, data, cfg) -> dict:
    """Three population estimates per BN layer and the test accuracy each one gives.

    - ``running``: the running averages kept during training (PyTorch, momentum 0.1);
    - ``algorithm2``: the paper's Algorithm 2 over the training set in mini-batches of the
      training batch size with the *final* weights, ``E[mu_B]``, ``m/(m-1) E[sigma_B^2]``;
    - ``exact``: the mean and (unbiased) variance of each BN input over the whole training set
      with the final weights (a "calibration" pass).
    """
    bns = bn_layers(model)
    if not bns:
        return {}
    xtr = data.x_train[: cfg.train_subset or None]
    m = cfg.batch_size * (int(np.prod(xtr.shape[2:])) if xtr.dim() == 4 else 1)
    moments = batch_moments(model, xtr, cfg.batch_size)
    alg2 = [F.population_stats(mu, var, m) for mu, var in moments]
    exact = _exact_moments(model, xtr)
    out: dict = {"layers": []}
    for i, b in enumerate(bns):
        rm, rv = b.running_mean.double().numpy(), b.running_var.double().numpy()
        out["layers"].append({
            "running_vs_exact_mean": float(np.abs(rm - exact[i][0]).max()),
            "running_vs_exact_var_rel": float(np.abs(rv / exact[i][1] - 1).max()),
            "alg2_vs_exact_mean": float(np.abs(alg2[i][0] - exact[i][0]).max()),
            "alg2_vs_exact_var_rel": float(np.abs(alg2[i][1] / exact[i][1] - 1).max()),
        })
    accs = {}
    for name, stats in (("running", None), ("algorithm2", alg2), ("exact", exact)):
        with preserved(model):
            if stats is not None:
                for b, (mu, var) in zip(bns, stats, strict=True):
                    b.running_mean.copy_(torch.as_tensor(mu))
                    b.running_var.copy_(torch.as_tensor(var))
            accs[name] = evaluate(model, data.x_test, data.y_test)[0]
    out["test_acc"] = accs
    return out


@torch.no_grad()
def _exact_moments(model, x, bs=5000):
    """Whole-set mean and unbiased variance of every BN layer's input (running stats in eval mode)."""
    bns = bn_layers(model)
    sums = [None] * len(bns)

    def hook(i):
        def h(_m, args, _out):
            z = args[0].double().transpose(0, 1).reshape(args[0].shape[1], -1)
            s = (z.sum(1), (z * z).sum(1), z.shape[1])
            sums[i] = s if sums[i] is None else tuple(a + b for a, b in zip(sums[i], s, strict=True))

        return h

    # The input of BN layer i depends on the layers before it, which use their own statistics:
    # evaluate layer by layer, each pass with the earlier layers already calibrated.
    result = []
    with preserved(model):
        for i, b in enumerate(bns):
            sums = [None] * len(bns)
            model.eval()
            h = b.register_forward_hook(hook(i))
            try:
                for k in range(0, len(x), bs):
                    model(x[k : k + bs])
            finally:
                h.remove()
            s1, s2, n = sums[i]
            mean = s1 / n
            var = (s2 / n - mean * mean) * n / (n - 1)
            result.append((mean.numpy(), var.numpy()))
            b.running_mean.copy_(mean)
            b.running_var.copy_(var)
    return result


def analysis_test_batches(model: nn.Module, data, cfg, sizes=(2, 8, 64, 1000)) -> dict:
    """Test accuracy when the model is (wrongly) evaluated with batch statistics.

    By test-batch size (random i.i.d. batches: the test set in a fixed shuffled order), and
    with one-class batches of 64 (every batch drawn from a single class). Size 1 is not
    run: a batch of one has no variance, and BN refuses it in training mode.
    """
    if not bn_layers(model):
        return {}
    g = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(len(data.x_test), generator=g)
    x, y = data.x_test[perm], data.y_test[perm]
    out = {"eval_mode": evaluate(model, x, y)[0], "by_size": {}}
    for s in sizes:
        n = (len(x) // s) * s
        out["by_size"][str(s)] = evaluate(model, x[:n], y[:n], batch_size=s, batch_stats=True)[0]
    # each class's examples, cut to whole batches of 64, so that no batch mixes two classes
    idx = torch.cat([i[: (len(i) // 64) * 64] for i in (torch.nonzero(y == c).flatten()
                                                         for c in range(int(y.max()) + 1))])
    out["one_class_64"] = evaluate(model, x[idx], y[idx], batch_size=64, batch_stats=True)[0]
    return out


def fold_model(model: nn.Module) -> nn.Sequential:
    """An inference-only copy of a Sequential MLP/CNN with every BN folded into the preceding layer."""
    bn_types = tuple(type(b) for b in bn_layers(model)) or (nn.BatchNorm1d,)
    mods = list(model.net) if hasattr(model, "net") else list(model)
    out: list[nn.Module] = []
    for m in mods:
        if isinstance(m, bn_types) and out and isinstance(out[-1], (nn.Linear, nn.Conv2d)):
            prev = out[-1]
            fold = F.fold_linear if isinstance(prev, nn.Linear) else F.fold_conv
            w, b = fold(prev.weight.detach().double().numpy(),
                        None if prev.bias is None else prev.bias.detach().double().numpy(),
                        m.running_mean.double().numpy(), m.running_var.double().numpy(),
                        m.weight.detach().double().numpy(), m.bias.detach().double().numpy(), m.eps)
            new = copy.deepcopy(prev)
            if new.bias is None:
                new.bias = nn.Parameter(torch.zeros(new.weight.shape[0]))
            with torch.no_grad():
                new.weight.copy_(torch.as_tensor(w))
                new.bias.copy_(torch.as_tensor(b))
            out[-1] = new
        else:
            out.append(copy.deepcopy(m))
    return nn.Sequential(*out).eval()


@torch.no_grad()
def analysis_fold(model: nn.Module, data, cfg, repeats: int = 20) -> dict:
    """Fold BN into the preceding layers; compare outputs with eval mode and time both."""
    if not bn_layers(model):
        return {}
    model.eval()
    folded = fold_model(model)
    x = data.x_test[:1000]
    diff = float((folded(x) - model(x)).abs().max())

    def timeit(f):
        f(x)
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            f(x)
            ts.append(time.perf_counter() - t)
        return float(np.median(ts))

    t_bn, t_fold = timeit(model), timeit(folded)
    return {"max_abs_diff": diff, "seconds_bn": t_bn, "seconds_folded": t_fold, "speedup": t_bn / t_fold,
            "same_predictions": float((folded(data.x_test).argmax(1) == model(data.x_test).argmax(1)).float().mean())}


ANALYSES: dict[str, Callable] = {
    "population": analysis_population,
    "test_batches": analysis_test_batches,
    "fold": analysis_fold,
}
