"""The scale-invariance chapter's NumPy experiments (book/scale_invariance.ipynb): a linear layer followed by
BN and its gradients, and softmax regression by plain SGD with and without BN (gamma = 1, beta = 0 fixed).

Everything here is float64 NumPy on top of :mod:`bnlib.functional`, seeded and deterministic, so that
the chapter's numbers are the same on every machine.
"""

from __future__ import annotations

import numpy as np

from bnlib import functional as F


def bn_layer(u: np.ndarray, W: np.ndarray, dy: np.ndarray, eps: float = 1e-5):
    """``BN(u W)`` (gamma = 1, beta = 0) and, for the incoming gradient ``dy``, its gradients w.r.t. ``W`` and ``u``.

    Returns ``(out, dW, du)``.
    """
    units = W.shape[1]
    out, cache = F.forward(u @ W, np.ones(units), np.zeros(units), eps=eps)
    dz = F.backward(dy, cache)[0]
    return out, u.T @ dz, dz @ W.T


def logits(x: np.ndarray, W: np.ndarray, bn: bool, eps: float = 1e-5):
    """``x W``, batch-normalized (gamma = 1, beta = 0) when ``bn``; returns ``(logits, cache or None)``."""
    z = x @ W
    units = W.shape[1]
    return F.forward(z, np.ones(units), np.zeros(units), eps=eps) if bn else (z, None)


def loss_and_grad(x: np.ndarray, y: np.ndarray, W: np.ndarray, bn: bool, eps: float = 1e-5):
    """The mean cross-entropy of softmax(logits) on the batch ``(x, y)`` and its gradient w.r.t. ``W``."""
    n = len(y)
    h, cache = logits(x, W, bn, eps)
    h = h - h.max(axis=1, keepdims=True)
    p = np.exp(h) / np.exp(h).sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(n), y] + 1e-300).mean()
    dh = p.copy()
    dh[np.arange(n), y] -= 1
    dh /= n
    return loss, x.T @ (F.backward(dh, cache)[0] if bn else dh)


def run(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, lr: float, bn: bool, *,
        steps: int = 300, batch: int = 100, classes: int = 10, seed: int = 0, eps: float = 1e-5,
        init_std: float = 0.01) -> dict:
    """Softmax regression on ``(x, y)`` by ``steps`` steps of SGD with batches of ``batch`` drawn with replacement.

    Returns ``weights`` (the final W), ``unit_norms`` (steps + 1, classes: each unit's weight norm),
    ``norm`` (their mean per step), ``loss`` (each step's batch loss), ``acc`` (test accuracy; BN with the
    whole test set's statistics) and ``growth``: the largest relative gap, over steps and units, in the
    growth law ``|w'|^2 = |w|^2 + lr^2 |g|^2``, which holds for BN with eps = 0.
    """
    if steps < 1 or batch < 2:
        raise ValueError(f"a run needs at least one step and batches of at least 2, got steps={steps}, batch={batch}.")
    rng = np.random.default_rng(seed)
    W = rng.normal(0, init_std, size=(x.shape[1], classes))
    norms, losses, growth = [np.linalg.norm(W, axis=0)], [], []
    for _ in range(steps):
        idx = rng.integers(0, len(x), batch)
        loss, grad = loss_and_grad(x[idx], y[idx], W, bn, eps)
        losses.append(loss)
        new = W - lr * grad
        gap = (new**2).sum(0) - (W**2).sum(0) - lr**2 * (grad**2).sum(0)
        growth.append(np.max(np.abs(gap) / (new**2).sum(0)))
        W = new
        norms.append(np.linalg.norm(W, axis=0))
    h, _ = logits(x_test, W, bn, eps)
    unit_norms = np.array(norms)
    return {"weights": W, "unit_norms": unit_norms, "norm": unit_norms.mean(axis=1), "loss": np.array(losses),
            "acc": float((h.argmax(axis=1) == y_test).mean()), "growth": float(max(growth))}
