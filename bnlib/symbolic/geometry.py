r"""The geometry of a scale-invariant loss, proven with SymPy for an *arbitrary* loss of the direction.

A loss :math:`L(w) = f(w/\|w\|)`, with :math:`f` an undefined SymPy function of :math:`n` arguments, is
what BN makes of the weights of a unit that feeds it (Sec. 3.3 of the paper, with :math:`\epsilon = 0`).
For every such loss: the gradient is orthogonal to :math:`w` (Euler's relation for a function homogeneous of
degree 0), the gradient at :math:`c\,w` is the gradient at :math:`w` divided by :math:`c` (:math:`c > 0`),
so a gradient step grows the norm exactly by :math:`\eta^2\|g\|^2`; and SGD with momentum and weight decay
is SGD without weight decay on :math:`w_t/c_t`, at the rates :math:`\eta_t/(c_t c_{t+1})` (Li & Arora, 2020).
"""

from __future__ import annotations

import sympy as sp

from bnlib.symbolic.core import Identity

__all__ = ["direction_loss", "orthogonal_gradient", "gradient_homogeneity", "norm_growth_step",
           "decay_equivalence_step", "decay_equivalence_first_step"]

eta, lam, mu, c_scale = sp.symbols(r"eta lambda mu c", positive=True)


def _ident(name: str, lhs, rhs, n) -> Identity:
    return Identity(name, lhs, rhs, n, (sp.simplify(lhs - rhs),))


def direction_loss(n: int = 3):
    r"""``(w, L, grad)``: symbols :math:`w_1..w_n`, :math:`L = f(w/\|w\|)` and SymPy's gradient of it."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer of at least 2 (the number of weights), got {n!r}.")
    w = sp.symbols(f"w_1:{n + 1}", real=True)
    r = sp.sqrt(sp.Add(*(wi**2 for wi in w)))
    loss = sp.Function("f")(*(wi / r for wi in w))
    return w, loss, [sp.diff(loss, wi) for wi in w]


def orthogonal_gradient(n: int = 3) -> Identity:
    r""":math:`\sum_i w_i\,\partial L/\partial w_i = 0` for :math:`L = f(w/\|w\|)`."""
    w, _, g = direction_loss(n)
    return _ident("w . grad L = 0", sp.Add(*(wi * gi for wi, gi in zip(w, g, strict=True))), sp.S.Zero, n)


def gradient_homogeneity(n: int = 2) -> Identity:
    r""":math:`\nabla L(c\,w) = \nabla L(w)/c` for :math:`c > 0`, every component."""
    w, _, g = direction_loss(n)
    at_cw = {wi: c_scale * wi for wi in w}
    cases = [(gi.xreplace(at_cw), gi / c_scale) for gi in g]
    return Identity("grad L(c w) = grad L(w) / c", cases[0][0], cases[0][1], n,
                    tuple(sp.simplify(a - b) for a, b in cases))


def norm_growth_step(n: int = 3) -> Identity:
    r""":math:`\|w - \eta g\|^2 = \|w\|^2 + \eta^2\|g\|^2` for the gradient :math:`g` of :math:`L = f(w/\|w\|)`:
    the expansion leaves :math:`-2\eta\,w\cdot g`, which :func:`orthogonal_gradient` proves zero."""
    w, _, g = direction_loss(n)
    gs = sp.symbols(f"g_1:{n + 1}", real=True)  # the gradient as opaque symbols for the expansion
    sq = lambda v: sp.Add(*(vi**2 for vi in v))  # noqa: E731
    step = [wi - eta * gi for wi, gi in zip(w, gs, strict=True)]
    expanded = sp.expand(sq(step) - sq(w) - eta**2 * sq(gs))
    dot = sp.Add(*(wi * gi for wi, gi in zip(w, gs, strict=True)))
    rest = sp.expand(expanded + 2 * eta * dot)  # 0: the expansion is exactly -2 eta w.g
    euler = sp.simplify(dot.xreplace(dict(zip(gs, g, strict=True))))
    lhs = sq(step)
    return Identity("||w - eta g||^2 = ||w||^2 + eta^2 ||g||^2", lhs, sq(w) + eta**2 * sq(gs), n, (rest, euler))


def _step_symbols():
    w_prev, w_now, g_now, v_prev, v_now, h_now = sp.symbols(
        r"w_{t-1} w_{t} g_{t} \tilde{w}_{t-1} \tilde{w}_{t} \tilde{g}_{t}", real=True)
    eta_prev, eta_now, c_prev, c_now = sp.symbols(r"\eta_{t-1} \eta_{t} c_{t-1} c_{t}", positive=True)
    return w_prev, w_now, g_now, v_prev, v_now, h_now, eta_prev, eta_now, c_prev, c_now


def next_scale(c_prev, c_now, eta_prev, eta_now):
    r""":math:`c_{t+1} = (1 - \eta_t\lambda + \mu r_t)\,c_t - \mu r_t\,c_{t-1}`, :math:`r_t = \eta_t/\eta_{t-1}`."""
    r = eta_now / eta_prev
    return (1 - eta_now * lam + mu * r) * c_now - mu * r * c_prev


def decay_equivalence_step() -> Identity:
    r"""One step of torch's SGD with momentum :math:`\mu` and weight decay :math:`\lambda` (rate :math:`\eta_t`),
    written in positions (:math:`b_{t-1} = (w_{t-1} - w_t)/\eta_{t-1}`), against one step without weight decay
    at the rate :math:`\tilde\eta_t = \eta_t/(c_t c_{t+1})`: if :math:`w_{t-1} = c_{t-1}\tilde w_{t-1}`,
    :math:`w_t = c_t\tilde w_t` and the gradient is :math:`g_t = \tilde g_t/c_t` (:func:`gradient_homogeneity`),
    then :math:`w_{t+1} = c_{t+1}\tilde w_{t+1}`. Every component is a scalar instance of this identity."""
    w_prev, w_now, g_now, v_prev, v_now, h_now, eta_prev, eta_now, c_prev, c_now = _step_symbols()
    c_next = next_scale(c_prev, c_now, eta_prev, eta_now)
    lr_prev, lr_now = eta_prev / (c_prev * c_now), eta_now / (c_now * c_next)
    w_next = w_now - eta_now * (mu * (w_prev - w_now) / eta_prev + g_now + lam * w_now)
    v_next = v_now - lr_now * (mu * (v_prev - v_now) / lr_prev + h_now)
    sub = {w_prev: c_prev * v_prev, w_now: c_now * v_now, g_now: h_now / c_now}
    return _ident("w_{t+1} = c_{t+1} w~_{t+1}", w_next.xreplace(sub), c_next * v_next, 1)


def decay_equivalence_first_step() -> Identity:
    r"""The first step (torch starts the momentum buffer at the first gradient): from :math:`w_0 = \tilde w_0`,
    :math:`w_1 = w_0 - \eta_0(g_0 + \lambda w_0)` equals :math:`c_1\tilde w_1` with :math:`c_1 = 1 - \eta_0\lambda`
    and :math:`\tilde w_1 = \tilde w_0 - \tilde\eta_0 g_0`, :math:`\tilde\eta_0 = \eta_0/c_1`."""
    w0, g0, eta0 = sp.symbols(r"w_{0} g_{0} \eta_{0}", real=True)
    c1 = 1 - eta0 * lam
    return _ident("w_1 = c_1 w~_1", w0 - eta0 * (g0 + lam * w0), c1 * (w0 - eta0 / c1 * g0), 1)
