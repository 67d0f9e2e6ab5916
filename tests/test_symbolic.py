"""bnlib.symbolic: every derivation the chapters display, proven, checked numerically, and able to fail.

- Every identity simplifies to exactly 0 for the symbol m (sums closed by linearity and the
  Kronecker delta) and, independently, for every concrete m = 2..8 (sums written out term by
  term, no closing rule used).
- The closing rules themselves are checked numerically: a closed sum evaluated at random
  numbers equals the sum computed term by term.
- The lambdified SymPy expressions agree with bnlib.functional at random points (float64,
  relative error <= 1e-12).
- An equation edited into a wrong form (a sign, an exponent, a dropped term, m for m - 1) is
  caught: its difference does not simplify to 0.
- Text is never parsed (SymPy would evaluate it as code), and the parts of the package import one way.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from bnlib import functional as F
from bnlib import symbolic as S
from bnlib.symbolic import a, beta, dy, eps, gamma, i, m, x
from bnlib.symbolic.lambdified import _sum_out_deltas

CLAIMS = [
    S.mean_of_xhat, S.variance_of_xhat, S.identity_recovery, S.bias_cancels, S.central_moment_of_xhat,
    S.mu_term_vanishes, S.staged_equals_compact, S.autodiff_equals_compact, S.autodiff_equals_staged,
    S.jacobian_formula, S.jacobian_rows_sum_to_zero, S.jacobian_symmetric, S.jacobian_on_xhat,
    S.gradient_sums_to_zero, S.gradient_along_xhat, S.projector_square, S.scale_forward, S.scale_jacobian,
    S.weight_direction,
]
PAIRS = [S.output_moments, S.autodiff_dgamma_dbeta]
RTOL = 1e-12


def _forward(xv, g, b, e):
    return F.forward(xv, g, b, eps=e)


def rel_err(a_, b_) -> float:
    return float(np.max(np.abs(a_ - b_)) / max(np.max(np.abs(b_)), 1e-300))


# --------------------------------------------------------------------------- every identity, symbolic m
@pytest.mark.parametrize("claim", CLAIMS, ids=lambda f: f.__name__)
def test_identity_for_every_m(claim):
    result = claim()
    assert result.mm is m
    assert result.residuals == (0,)
    assert result.holds and result.difference == 0


@pytest.mark.parametrize("pair", PAIRS, ids=lambda f: f.__name__)
def test_pairs_for_every_m(pair):
    assert all(r.holds for r in pair())


# --------------------------------------------------------------------------- every identity, m = 2..8
@pytest.mark.parametrize("mm", S.CONCRETE_MS)
def test_identities_for_each_concrete_m(mm):
    for claim in CLAIMS:
        result = claim(mm)
        assert result.mm == mm
        assert result.holds, f"{claim.__name__} fails for m = {mm}: {result.difference}"
    for pair in PAIRS:
        assert all(r.holds for r in pair(mm))


def test_concrete_claims_check_every_example():
    """A per-example claim of a concrete batch has one residual per example (and per entry for J)."""
    assert len(S.autodiff_equals_compact(5).residuals) == 5
    assert len(S.jacobian_formula(4).residuals) == 16
    assert len(S.jacobian_symmetric(4).residuals) == 10
    assert len(S.projector_square(3).residuals) == 6


# --------------------------------------------------------------------------- the paper's six equations
def test_paper_equations_are_the_chain_rule():
    checks = S.check_paper_equations()
    assert list(checks) == ["dxhat", "dvar", "dmu", "dx", "dgamma", "dbeta"]
    assert all(c.holds for c in checks.values())


def _edited(name, fn):
    paper = dict(S.PAPER_EQUATIONS)
    lhs, rhs = paper[name]
    paper[name] = (lhs, fn(rhs))
    return paper


EDITS = {
    "dxhat: gamma dropped": ("dxhat", lambda r: r / gamma),
    "dvar: sign": ("dvar", lambda r: -r),
    "dvar: exponent -1/2 for -3/2": ("dvar", lambda r: r.xreplace({sp.Rational(-3, 2): sp.Rational(-1, 2)})),
    "dmu: first sum dropped": ("dmu", lambda r: sp.Add(*[t for t in r.args if not isinstance(t, sp.Sum)])),
    "dx: dl/dmu term dropped": ("dx", lambda r: r.xreplace({S.d_mu: 0})),
    "dx: 2/m for 1/m": ("dx", lambda r: r.xreplace({S.d_var: S.d_var / 2})),
    "dgamma: xhat dropped": ("dgamma", lambda r: r.replace(lambda e: isinstance(e, sp.Indexed) and e.base == S.xhat,
                                                            lambda e: 1)),
    "dbeta: 1/m": ("dbeta", lambda r: r / m),
}


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
def test_an_edited_paper_equation_is_caught(edit):
    name, fn = EDITS[edit]
    paper = _edited(name, fn)
    assert paper[name][1] != S.PAPER_EQUATIONS[name][1]
    checks = S.check_paper_equations(paper)
    assert not checks[name].holds and checks[name].difference != 0
    assert all(c.holds for n, c in checks.items() if n != name)


@pytest.mark.parametrize("edit", ["dvar: sign", "dx: dl/dmu term dropped", "dx: 2/m for 1/m"])
def test_an_edited_equation_breaks_the_composed_gradient(edit):
    paper = _edited(*EDITS[edit])
    assert not S.staged_equals_compact(paper=paper).holds
    assert not S.staged_equals_compact(3, paper=paper).holds
    assert not S.autodiff_equals_staged(4, paper=paper).holds


def test_the_mu_term_of_equation_3_may_go_but_nothing_else():
    """Equation (3)'s second term is 0 at the batch mean (mu_term_vanishes): dropping it keeps dx right."""
    paper = _edited("dmu", lambda r: sp.Add(*[t for t in r.args if isinstance(t, sp.Sum)]))
    assert not S.check_paper_equations(paper)["dmu"].holds  # not the chain rule for a free mu
    assert S.staged_equals_compact(paper=paper).holds  # but the same gradient at mu = mean
    assert S.staged_equals_compact(4, paper=paper).holds


def _compact_variant(change):
    def compact(mm, t):
        b = S.batch(mm)
        k = sp.Symbol("k", integer=True, positive=True)
        terms = {"m": mm, "sum_dy": b.sum(dy[k], k), "sum_dy_xhat": b.sum(dy[k] * b.xhat(k), k), "xhat": b.xhat(t),
                 "scale": gamma / (mm * b.std)}
        terms.update(change(b, t))
        return terms["scale"] * (terms["m"] * dy[t] - terms["sum_dy"] - terms["xhat"] * terms["sum_dy_xhat"])
    return compact


COMPACT_EDITS = {
    "m - 1 for m": lambda b, t: {"m": b.m - 1},
    "sum dy x for sum dy xhat": lambda b, t: {"sum_dy_xhat": b.sum(dy[sp.Symbol("k", integer=True, positive=True)]
                                                                   * x[sp.Symbol("k", integer=True, positive=True)],
                                                                   sp.Symbol("k", integer=True, positive=True))},
    "sqrt(var) for sqrt(var + eps)": lambda b, t: {"scale": gamma / (b.m * sp.sqrt(b.var))},
    "sum dy dropped": lambda b, t: {"sum_dy": 0},
}


def test_the_compact_form_as_written_holds():
    assert S.autodiff_equals_compact(compact=_compact_variant(lambda b, t: {})).holds
    assert S.autodiff_equals_compact(4, compact=_compact_variant(lambda b, t: {})).holds


@pytest.mark.parametrize("edit", list(COMPACT_EDITS), ids=list(COMPACT_EDITS))
def test_an_edited_compact_form_is_caught(edit):
    wrong = _compact_variant(COMPACT_EDITS[edit])
    assert not S.autodiff_equals_compact(compact=wrong).holds
    assert not S.autodiff_equals_compact(3, compact=wrong).holds


@pytest.mark.parametrize("lhs, rhs", [
    (S.variance_of_xhat().lhs, 1),  # "BN fixes the variance to 1": only up to eps
    (S.scale_forward().lhs, S.batch().xhat(i)),  # BN(a x) = BN(x) exactly: only for eps = 0
    (S.jacobian_on_xhat().lhs, 0),  # J xhat = 0: only for eps = 0
    (S.gradient_along_xhat().lhs, 0),
    (S.weight_direction().lhs, 0),
])
def test_claims_that_hold_only_for_eps_zero_fail_for_eps_positive(lhs, rhs):
    assert S.claim("wrong", m, [(lhs, rhs)]).difference != 0
    assert S.residual((lhs - rhs).xreplace({eps: 0})) == 0


# --------------------------------------------------------------------------- the tools themselves
def test_residual_is_not_trivially_zero():
    b = S.batch()
    assert S.residual(b.std - sp.sqrt(b.var)) != 0
    assert S.residual(x[i] - b.mu) != 0
    assert S.residual(sp.sqrt(b.var + eps) ** 2 - b.var - eps) == 0
    assert S.residual(b.sum(x[S._k] ** 2) - b.sum(x[S._k]) ** 2 / m) != 0


@pytest.mark.parametrize("mm", [3, 7])
def test_closed_sums_equal_sums_computed_term_by_term(mm):
    """Rules 1 and 2 (linearity, Kronecker delta) against the raw sums looped over by lambdify."""
    rng = np.random.default_rng(mm)
    xs, ds = np.concatenate([[0.0], rng.normal(size=mm)]), np.concatenate([[0.0], rng.normal(size=mm)])
    scalars = (eps, gamma, beta, a)
    values = (0.3, 1.7, -0.4, 2.5)
    loops = [{"KroneckerDelta": lambda p, q: float(p == q)}, "math"]
    for expr in (S.autodiff_dx(), S.staged_dx(), S.jacobian_formula().lhs, S.gradient_along_xhat().lhs,
                 S.batch().var, S.scale_jacobian().lhs):
        closed = S.close(expr)
        assert not closed.has(sp.Sum)
        closed = closed.xreplace({atom: s for atom, s in S._ATOM_SUMS.items() if closed.has(atom)})
        args = (x, dy, m, i, S.j, *scalars)
        raw = sp.lambdify(args, expr, modules=loops)(xs, ds, mm, 2, 3, *values)
        via_rules = sp.lambdify(args, closed, modules=loops)(xs, ds, mm, 2, 3, *values)
        assert via_rules == pytest.approx(raw, rel=1e-12, abs=1e-12)


def test_display_only_renames():
    b = S.batch()
    for expr in (S.compact_dx(), S.jacobian_formula().rhs, S.variance_of_xhat().rhs, S.staged_dx()):
        shown = S.display(expr)
        assert shown != expr
        back = shown.replace(lambda e: isinstance(e, sp.Indexed) and e.base == S.xhat, lambda e: b.xhat(e.indices[0]))
        back = back.xreplace({S.var: b.var}).xreplace({S.mu: b.mu})
        assert S.residual(back - expr) == 0


def test_latex_writes_adjoints_as_the_paper():
    text = S.latex(S.PAPER_EQUATIONS["dx"][0])
    assert text == r"\frac{\partial \ell}{\partial x_{i}}"
    assert r"\frac{\partial \ell}{\partial \sigma^{2}}" in S.latex(S.PAPER_EQUATIONS["dmu"][1])
    assert "=" in S.latex(S.mean_of_xhat())


def test_equation_writes_the_sides_in_the_chapters_notation():
    assert S.equation(S.mean_of_xhat()) == r"\frac{\sum_{j=1}^{m} \hat{x}_{j}}{m} = 0"
    assert S.equation("a", x[i], "b") == "a = x_{i} = b"  # LaTeX text is kept as it is
    assert S.equation(x[i] - S.mu, 0) == r"\sqrt{\epsilon + \sigma^{2}} \hat{x}_{i} = 0"
    assert S.equation(x[i] - S.mu, 0, rewrite=False) == r"- \mu + x_{i} = 0"
    assert S.equation(S.batch().xhat(i), "y", hat=False) == r"\frac{- \mu + x_{i}}{\sqrt{\epsilon + \sigma^{2}}} = y"
    with pytest.raises(ValueError, match="at least two sides"):
        S.equation(x[i])


@pytest.mark.parametrize("value, latex", [(1e-6, "$10^{-6}$"), (1e6, "$10^{6}$"), (3e5, "$10^{5}$"), (4e5, "$10^{6}$"),
                                          (np.spacing(1e6), "$10^{-10}$"), (np.finfo(np.float64).eps, "$10^{-16}$")])
def test_power_of_ten(value, latex):
    assert S.power_of_ten(value) == latex


@pytest.mark.parametrize("bad", [0.0, -1e-3, float("inf"), float("nan"), True])
def test_power_of_ten_refuses_what_has_no_power(bad):
    with pytest.raises(ValueError, match="positive finite number"):
        S.power_of_ten(bad)


def test_relative_error():
    assert S.relative_error([1.0, 2.0], [1.0, 4.0]) == 0.5  # max|d| = 2, max|want| = 4
    assert S.relative_error(np.array([[3.0]]), np.array([[3.0]])) == 0.0
    assert S.relative_error([1e-300], [0.0]) == 1.0  # want all zero: divided by 1e-300


def test_variance_limit():
    lim = S.variance_limit()
    assert lim["limit"] == 1 and lim["at_var_eq_eps"] == sp.Rational(1, 2)


# --------------------------------------------------------------------------- scale invariance and conv BN
@pytest.mark.parametrize("mm, n", [(2, 1), (3, 2), (4, 2)])
def test_scale_invariance_on_a_linear_unit(mm, n):
    result = S.scale_layer(mm, n)
    assert result["u"].holds and len(result["u"].residuals) == mm * mm * n
    assert result["w"].holds and len(result["w"].residuals) == mm * n


def test_scale_invariance_fails_without_the_eps_correction():
    b = S.batch(3)
    wrong = S.claim("no correction", 3, [(b.xhat(1, scale=a), b.xhat(1))])
    assert not wrong.holds
    assert S.residual((b.xhat(1, scale=a) - b.xhat(1)).xreplace({eps: 0})) == 0


@pytest.mark.parametrize("shape", [(2, 1, 1), (1, 2, 2), (2, 2, 2), (3, 1, 2)])
def test_conv_bn_effective_batch(shape):
    result = S.conv_effective_batch(shape)
    assert result.holds and result.mm == shape[0] * shape[1] * shape[2]


# --------------------------------------------------------------------------- numeric checks against bnlib.functional
@pytest.mark.parametrize("backward", [F.backward, F.backward_staged], ids=["compact", "staged"])
def test_lambdified_sympy_matches_functional(backward):
    errors = S.numeric_report(_forward, backward, m_values=(3, 8, 40), channels=3, seed=1)
    assert set(errors) == {"y", "dx_autodiff", "dx_compact", "dx_staged", "dgamma", "dbeta", "mean_xhat",
                           "var_xhat", "jacobian"}
    for name, err in errors.items():
        assert err <= RTOL, f"{name}: relative error {err:.3g}"


def test_numeric_report_catches_a_wrong_backward():
    def wrong(dy_, cache):
        dx, dg, db = F.backward(dy_, cache)
        return dx * (1 + 1e-9), dg, db

    assert S.numeric_report(_forward, wrong, m_values=(5,), seed=2)["dx_compact"] > RTOL


def test_conv_gradient_of_functional_is_the_compact_form_with_m_prime():
    rng = np.random.default_rng(3)
    n, c, h, w = 3, 2, 4, 5
    xv, dyv = rng.normal(size=(n, c, h, w)) * 2 + 1, rng.normal(size=(n, c, h, w))
    g = rng.normal(size=c)
    _, cache = F.forward(xv, g, np.zeros(c), eps=1e-5)
    dx = F.backward(dyv, cache)[0]
    fn = S.numeric()["dx_compact"]
    mp = n * h * w
    for ch in range(c):
        xs, ds = (np.concatenate([[0.0], v[:, ch].ravel()]) for v in (xv, dyv))  # the m' = n h w values
        got = fn(xs, ds, mp, np.arange(1, mp + 1), g[ch], 1e-5)
        assert rel_err(got, dx[:, ch].ravel()) <= RTOL


@pytest.mark.parametrize("scale", [1e-3, 0.5, 7.0, 1e3])
def test_functional_obeys_the_exact_scale_law(scale):
    """BN_eps(a x) = BN_{eps/a^2}(x), and the gradient w.r.t. a x is 1/a that at x with eps/a^2."""
    rng = np.random.default_rng(4)
    xv, dyv, g = rng.normal(size=(16, 3)), rng.normal(size=(16, 3)), rng.normal(size=3)
    y1, c1 = F.forward(scale * xv, g, np.zeros(3), eps=1e-5)
    y2, c2 = F.forward(xv, g, np.zeros(3), eps=1e-5 / scale**2)
    assert rel_err(y1, y2) <= RTOL
    assert rel_err(F.backward(dyv, c1)[0], F.backward(dyv, c2)[0] / scale) <= RTOL


def test_functional_gradient_directions():
    rng = np.random.default_rng(5)
    xv, dyv, g, e = rng.normal(size=(32, 4)) * 0.01, rng.normal(size=(32, 4)), rng.normal(size=4), 1e-5
    _, cache = F.forward(xv, g, np.zeros(4), eps=e)
    dx = F.backward(dyv, cache)[0]
    scale = np.abs(g) / np.sqrt(cache["var"] + e) * np.abs(dyv).max(axis=0)
    assert np.all(np.abs(dx.sum(axis=0)) <= 1e-12 * 32 * scale)
    along = (cache["xhat"] * dx).sum(axis=0)
    predicted = g * e / (cache["var"] + e) ** 1.5 * (dyv * cache["xhat"]).sum(axis=0)
    assert rel_err(along, predicted) <= 1e-9  # a small difference of large sums
    assert np.all(np.abs(predicted) > 1e-3 * np.abs(dx).max(axis=0))  # visibly nonzero for var ~ eps


def test_bias_and_shape_numeric():
    """bias_cancels and central_moment_of_xhat with bnlib.functional: BN(x + c) = BN(x), moments scale exactly."""
    rng = np.random.default_rng(7)
    xv = rng.exponential(size=(50, 3)) * [1.0, 0.01, 5.0]  # skewed features, one with variance ~ 10 eps
    y0, cache = F.forward(xv, np.ones(3), np.zeros(3), eps=1e-3)
    y1, _ = F.forward(xv + [2.0, -1.0, 0.5], np.ones(3), np.zeros(3), eps=1e-3)
    assert rel_err(y1, y0) <= 1e-12
    c = xv - xv.mean(axis=0)
    for order in (3, 4):
        predicted = (c**order).mean(axis=0) / (cache["var"] + 1e-3) ** (order / 2)
        assert rel_err((cache["xhat"] ** order).mean(axis=0), predicted) <= 1e-12


def test_weight_direction_numeric():
    """weight_direction with bnlib.functional on a linear unit: w . dl/dw = eps/(var + eps) sum dl/dxhat xhat."""
    rng = np.random.default_rng(8)
    u, w, dyv = rng.normal(size=(24, 5)), rng.normal(size=(5, 2)) * 0.01, rng.normal(size=(24, 2))
    _, cache = F.forward(u @ w, np.ones(2), np.zeros(2), eps=1e-5)
    radial = (w * (u.T @ F.backward(dyv, cache)[0])).sum(axis=0)
    predicted = 1e-5 / (cache["var"] + 1e-5) * (dyv * cache["xhat"]).sum(axis=0)
    assert rel_err(radial, predicted) <= 1e-9  # a small difference of large sums
    assert np.all(np.abs(predicted) > 1e-3)  # visibly nonzero: var(u w) is small (about 5e-4)


def test_identity_recovery_numeric():
    rng = np.random.default_rng(6)
    xv = rng.normal(size=(20, 3)) * [1.0, 5.0, 0.1] + [3.0, -2.0, 0.0]
    _, cache = F.forward(xv, np.ones(3), np.zeros(3), eps=1e-5)
    y, _ = F.forward(xv, np.sqrt(cache["var"] + 1e-5), cache["mu"], eps=1e-5)
    assert rel_err(y, xv) <= RTOL


# --------------------------------------------------------------------------- sigmoid and bad input
def test_sigmoid_linear_fit_against_the_trapezoid_rule():
    for g, c in ((1.0, 0.0), (4.0, 1.0), (0.3, -2.0)):
        got = S.sigmoid_linear_fit(g, c)
        # trapezoid rule on a fine grid: spectrally accurate for a smooth integrand with Gaussian tails
        u = np.linspace(-40, 40, 40001)
        wts = np.exp(-u**2 / 2)
        wts = wts / wts.sum()
        s = 1 / (1 + np.exp(-(g * u + c)))
        r2 = (wts @ (s * u)) ** 2 / (wts @ (s - wts @ s) ** 2)
        assert got["r2"] == pytest.approx(r2, rel=1e-10)
        assert got["hi"] == pytest.approx(c + 1.959963984540054 * g, rel=1e-14)
        sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
        assert got["range_95"] == pytest.approx(sig(got["hi"]) - sig(got["lo"]), rel=1e-12)


@pytest.mark.parametrize("call, message", [
    (lambda: S.batch(1), "at least 2"),
    (lambda: S.batch(True), "at least 2"),
    (lambda: S.batch(2.0), "at least 2"),
    (lambda: S.scale_layer(1, 2), "mm must be"),
    (lambda: S.scale_layer(3, 0), "mm must be"),
    (lambda: S.conv_effective_batch((1, 1, 1)), "shape must be"),
    (lambda: S.conv_effective_batch((2, 2)), "shape must be"),
    (lambda: S.central_moment_of_xhat(order=0), "order must be"),
    (lambda: S.display(S.compact_dx(3, 1), 3), "symbolic batch"),
    (lambda: S.check_paper_equations({"dz": (0, 0)}), "unknown equation"),
    (lambda: S.check_paper_equations({"dx": (S.d_mu, 0)}), "left-hand side"),
])
def test_bad_input_is_one_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


STRING_RAN = False  # what the text below would set, were it evaluated


@pytest.mark.parametrize("fn", [S.close, S.display, _sum_out_deltas], ids=["close", "display", "_sum_out_deltas"])
def test_text_is_refused_and_never_run(fn):
    """SymPy's sympify evaluates text as Python: a string that would set a global is refused, and nothing runs."""
    code = f"setattr(__import__('sys').modules[{__name__!r}], 'STRING_RAN', True)"
    for text in (code, code.encode(), "x + 1"):
        with pytest.raises(TypeError, match="takes a SymPy expression"):
            fn(text)
    assert sys.modules[__name__].STRING_RAN is False
    assert sp.sympify(code) is None and sys.modules[__name__].STRING_RAN is True  # the test would catch a parse
    sys.modules[__name__].STRING_RAN = False


def test_numbers_are_still_expressions():
    assert S.close(3) == 3 and S.close(2.5) == sp.Float(2.5) and S.close(np.float64(0.5)) == sp.Float(0.5)
    assert S.display(1) == 1 and _sum_out_deltas(sp.Rational(1, 3)) == sp.Rational(1, 3)


#: The parts of bnlib.symbolic, bottom to top, and what each may import at module level besides sympy.
PARTS = {"core": set(), "forward": {"core"}, "backward": {"core"}, "scale": {"core", "backward"},
         "lambdified": {"core", "backward"}}


@pytest.mark.parametrize("part", list(PARTS))
def test_the_parts_import_one_way(part):
    source = Path(S.__file__).with_name(f"{part}.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported |= {n.name for n in node.names}
    siblings = {name.removeprefix("bnlib.symbolic.") for name in imported if name.startswith("bnlib")}
    assert siblings <= PARTS[part], f"bnlib.symbolic.{part} imports {sorted(siblings - PARTS[part])}"
    others = {name.split(".")[0] for name in imported if not name.startswith("bnlib")}
    assert others <= {"__future__", "functools", "math", "dataclasses", "sympy", "numpy", "mpmath"}, others
