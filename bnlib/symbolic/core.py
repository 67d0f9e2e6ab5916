"""Batch Normalization derived and proven with SymPy: the equations the chapters display.

A mini-batch is ``x_1, ..., x_m`` (one feature), written with SymPy's ``IndexedBase`` and
``Sum`` so that the batch size ``m`` stays a symbol. Each claim below is built as two SymPy
expressions and returned as an :class:`Identity`: the two sides and their *simplified
difference*, exactly ``0`` when the claim is proven. The tests assert ``identity.holds``;
the chapters display the two sides and the difference.

How a proof is closed
---------------------
SymPy 1.14 cannot evaluate a sum of unknown terms such as ``Sum(x[k] - mu, (k, 1, m))``:
``Sum.doit`` returns the sum untouched as soon as one of its terms has no closed form. So
:func:`close` closes the sums over the batch with the two rules finite sums obey, applied
term by term after ``sympy.expand``:

1. linearity: ``sum_k (c f(k) + g(k)) = c sum_k f(k) + sum_k g(k)`` for ``c`` free of ``k``,
   and ``sum_k c = m c``;
2. the Kronecker delta: ``sum_k delta_{ik} f(k) = f(i)`` for an index ``i`` of the batch
   (``1 <= i <= m``); SymPy's ``diff`` produces these deltas when it differentiates
   ``x[k]`` with respect to ``x[i]``.

What remains of a sum (``sum_k x_k``, ``sum_k x_k^2``, ``sum_k dy_k x_k``, ...) becomes one
opaque symbol, and :func:`residual` brings the difference of the two sides, a rational
function of these symbols, of ``x_i``, ``m``, ``epsilon`` and a square root, into SymPy's
canonical form for rational functions. A difference that vanishes with the sums treated as
independent symbols vanishes for every value they can take, so the claim holds for every
``m``.

Every claim also accepts a concrete batch size ``mm`` (the chapters and tests use
``2, ..., 8``): every sum is then written out term by term, ``f(1) + ... + f(mm)``, rules 1
and 2 are never used, and each example ``i = 1..mm`` is checked separately. This is an independent
cross-check of the two rules.

Derivatives are always SymPy's: ``sympy.diff`` of the explicit forward expression.
:func:`numeric` turns the same expressions into NumPy functions with ``sympy.lambdify``;
the tests and the chapters compare them with :mod:`bnlib.functional`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp
from sympy.printing.latex import LatexPrinter

__all__ = [
    "m", "i", "j", "eps", "gamma", "beta", "a", "x", "dy", "mu", "var", "xhat",
    "d_xhat", "d_var", "d_mu", "d_x", "d_gamma", "d_beta", "CONCRETE_MS",
    "Identity", "Batch", "batch", "close", "residual", "claim", "latex",
    "mean_of_xhat", "variance_of_xhat", "variance_limit", "output_moments", "identity_recovery", "bias_cancels",
    "central_moment_of_xhat",
    "PAPER_EQUATIONS", "chain_rule_equations", "check_paper_equations", "staged_dx", "compact_dx", "autodiff_dx",
    "staged_equals_compact", "autodiff_equals_compact", "autodiff_equals_staged", "autodiff_dgamma_dbeta",
    "mu_term_vanishes",
    "jacobian", "jacobian_formula", "jacobian_rows_sum_to_zero", "jacobian_symmetric", "jacobian_on_xhat",
    "gradient_sums_to_zero", "gradient_along_xhat", "projector_square",
    "scale_forward", "scale_jacobian", "scale_layer", "weight_direction",
    "conv_effective_batch", "sigmoid_linear_fit", "numeric",
]

# --------------------------------------------------------------------------- symbols
m = sp.Symbol("m", integer=True, positive=True)  #: the mini-batch size
i, j = sp.symbols("i j", integer=True, positive=True)  #: free indices of claims, 1 <= i, j <= m
_k = sp.Symbol("k", integer=True, positive=True)  # the bound index of every sum the batch builds
eps = sp.Symbol("epsilon", positive=True)
gamma = sp.Symbol("gamma", real=True)
beta = sp.Symbol("beta", real=True)
a = sp.Symbol("a", positive=True)  #: the factor that scales a layer's weights (Sec. 3.3)
x = sp.IndexedBase("x", real=True)  #: the batch x_1..x_m
dy = sp.IndexedBase("dy", real=True)  #: dl/dy_i, the gradient that arrives from above

# Nodes of the computation graph as independent symbols (the paper's staged chain rule).
mu = sp.Symbol("mu", real=True)
var = sp.Symbol("sigma^2", positive=True)
xhat = sp.IndexedBase("xhat", real=True)
# Their adjoints dl/d(node), printed as fractions by :func:`latex`.
d_xhat = sp.IndexedBase("dxhat", real=True)
d_x = sp.IndexedBase("dx", real=True)
d_var = sp.Symbol("dvar", real=True)
d_mu = sp.Symbol("dmu", real=True)
d_gamma = sp.Symbol("dgamma", real=True)
d_beta = sp.Symbol("dbeta", real=True)

CONCRETE_MS = tuple(range(2, 9))  #: the concrete batch sizes each identity is re-proven for


# --------------------------------------------------------------------------- printing
class _Printer(LatexPrinter):
    """SymPy's LaTeX printer, with the adjoints written as the paper writes them."""

    _INDEXED = {"dy": "y", "dxhat": r"\hat{x}", "dx": "x"}
    _SCALAR = {"dvar": r"\sigma^{2}", "dmu": r"\mu", "dgamma": r"\gamma", "dbeta": r"\beta"}

    def _print_Indexed(self, expr):
        name = expr.base.label.name
        index = ",".join(self._print(t) for t in expr.indices)
        if name in self._INDEXED:
            return r"\frac{\partial \ell}{\partial " + self._INDEXED[name] + "_{" + index + "}}"
        return self._print(expr.base.label) + "_{" + index + "}"

    def _print_Symbol(self, expr, style="plain"):
        if expr.name in self._SCALAR:
            return r"\frac{\partial \ell}{\partial " + self._SCALAR[expr.name] + "}"
        if expr in _ATOM_SUMS:
            return self._print(_ATOM_SUMS[expr])
        return super()._print_Symbol(expr, style=style)


def latex(expr) -> str:
    """LaTeX of a SymPy expression or of an :class:`Identity` (``lhs = rhs``), adjoints as fractions."""
    if isinstance(expr, Identity):
        return latex(expr.lhs) + " = " + latex(expr.rhs)
    return _Printer().doprint(expr)


# --------------------------------------------------------------------------- the batch
@dataclass(frozen=True)
class Batch:
    """Algorithm 1 (the forward pass) for a batch of ``m`` values: the symbol ``m`` or an integer.

    For an integer ``m`` each sum is written out term by term (``f(1) + ... + f(m)``); for the
    symbol ``m`` the sums stay ``Sum`` objects over the bound index ``k``.
    """

    m: object

    @property
    def concrete(self) -> bool:
        return isinstance(self.m, int)

    def sum(self, f, idx=_k):
        """``sum_{idx=1}^{m} f``: a ``Sum`` for the symbol ``m``, written out term by term for an integer."""
        if self.concrete:
            return sp.Add(*(f.xreplace({idx: sp.Integer(v)}) for v in range(1, self.m + 1)))
        return sp.Sum(f, (idx, 1, self.m))

    @property
    def indices(self) -> tuple:
        """The examples a per-example claim is checked at: ``(i,)``, or ``(1, ..., m)``."""
        return tuple(range(1, self.m + 1)) if self.concrete else (i,)

    @functools.cached_property
    def mu(self):
        return self.sum(x[_k]) / self.m

    @functools.cached_property
    def var(self):
        return self.sum((x[_k] - self.mu) ** 2) / self.m

    @functools.cached_property
    def std(self):
        return sp.sqrt(self.var + eps)

    def xhat(self, t, scale=1):
        """``xhat_t`` as an expression in ``x`` (normalize); with ``scale``, that of the batch ``scale * x``."""
        if scale == 1:
            return (x[t] - self.mu) / self.std
        return scale * (x[t] - self.mu) / sp.sqrt(scale**2 * self.var + eps)

    def y(self, t):
        return gamma * self.xhat(t) + beta

    @functools.cached_property
    def loss(self):
        """``l = sum_k dy_k y_k``, a loss whose gradient with respect to ``y`` is ``dy``.

        The backward pass of any loss at a point where ``dl/dy_k = dy_k`` is the gradient of
        this one, so ``diff(loss, x[i])`` is the backward pass in general.
        """
        return self.sum(dy[_k] * self.y(_k))


@functools.cache
def batch(mm=m) -> Batch:
    """The (cached) :class:`Batch` of size ``mm``: the symbol ``m`` or an integer of at least 2."""
    if not (mm is m or (isinstance(mm, int) and not isinstance(mm, bool) and mm >= 2)):
        raise ValueError(f"mm must be the symbol m or an integer of at least 2 (a batch size), got {mm!r}.")
    return Batch(mm)


# --------------------------------------------------------------------------- closing sums
_ATOM_SUMS: dict[sp.Symbol, sp.Sum] = {}  # opaque symbol -> the sum it stands for
_SUM_ATOMS: dict[sp.Sum, sp.Symbol] = {}


def _atom(summand, idx, hi) -> sp.Symbol:
    canon = sp.Sum(summand.xreplace({idx: _k}), (_k, 1, hi))
    s = _SUM_ATOMS.get(canon)
    if s is None:
        s = sp.Symbol(f"Sum[{sp.sstr(canon.function)}]", real=True)
        _SUM_ATOMS[canon], _ATOM_SUMS[s] = s, canon
    return s


def _sum_out_delta(term, idx):
    """``term`` summed over ``idx`` when it holds a Kronecker delta in ``idx`` (rule 2), else None."""
    for d in sp.Mul.make_args(term):
        if isinstance(d, sp.KroneckerDelta) and d.has(idx):
            other = d.args[1] if d.args[0] == idx else d.args[0]
            return (term / d).xreplace({idx: other})
    return None


def _close_sum(s: sp.Sum):
    if len(s.limits) > 1:  # Sum(f, L1, L2) is Sum(Sum(f, L1), L2): the innermost limit first
        return _close_sum(sp.Sum(_close_sum(sp.Sum(s.function, s.limits[0])), *s.limits[1:]))
    (idx, lo, hi), = s.limits
    if lo != 1:
        raise ValueError(f"close() handles sums from 1 to m, got the limits {s.limits}.")
    out = []
    for term in sp.Add.make_args(sp.expand(s.function)):
        coeff, dep = term.as_independent(idx, as_Add=False)
        if dep == 1:  # rule 1: sum_k c = m c
            out.append(coeff * hi)
            continue
        summed = _sum_out_delta(dep, idx)
        if summed is not None:  # rule 2
            out.append(coeff * summed)
            continue
        if (dep.free_symbols & {i, j, _k}) - {idx}:
            raise NotImplementedError(f"close() cannot sum {dep} over {idx}: it depends on another index")
        out.append(coeff * _atom(dep, idx, hi))  # rule 1: the sum of what depends on k stays one symbol
    return sp.Add(*out)


def close(expr):
    """``expr`` with every ``Sum`` over the batch closed by linearity and the Kronecker-delta rule.

    Inner sums are closed first. What remains of a sum is an opaque symbol (it prints as the sum).
    """
    return sp.sympify(expr).replace(lambda e: isinstance(e, sp.Sum), _close_sum)


# --------------------------------------------------------------------------- zero test
def _is_root(e) -> bool:
    return e.is_Pow and e.exp.is_Rational and not e.exp.is_Integer


@functools.lru_cache(maxsize=4096)
def _split_root(p: sp.Pow):
    """``b**e`` with the positive factors of ``b`` taken out, so that equal square roots look equal."""
    return sp.expand_power_base(sp.Pow(sp.factor(sp.cancel(p.base)), p.exp))


@functools.lru_cache(maxsize=256)
def _solve_for_eps(base, r):
    """``epsilon`` from ``base = r**2`` when ``base`` is linear in ``epsilon`` (else None)."""
    slope = sp.diff(base, eps)
    if slope == 0 or slope.has(eps):
        return None
    return (r**2 - base.xreplace({eps: 0})) / slope


def _scan(expr):
    """One pass over the distinct subexpressions of ``expr``: its square roots (and other
    fractional powers), its generators (symbols, indexed symbols, Kronecker deltas) and the
    bases of its negative integer powers."""
    roots, gens, dens = set(), set(), set()
    seen = set()
    stack = [expr]
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.add(e)
        if isinstance(e, (sp.Symbol, sp.Indexed, sp.KroneckerDelta)):
            gens.add(e)
            continue
        if e.is_Pow and e.exp.is_Rational:
            if not e.exp.is_Integer:
                roots.add(e)
            elif e.exp < 0:
                dens.add(e.base)
        stack.extend(e.args)
    return roots, gens, dens


def residual(expr):
    """The canonical form of ``expr``: exactly ``0`` when ``expr`` vanishes identically.

    Sums are closed (:func:`close`). Each square root is normalized and replaced by a positive
    symbol ``r`` with ``r**2`` equal to its base. When one root ``sqrt(b)`` remains and ``b``
    is linear in ``epsilon``, ``epsilon`` is eliminated instead (``b = r**2`` solved for
    ``epsilon``), a one-to-one change of variables, so the difference vanishes in
    ``(r, ...)`` exactly when it vanishes in ``(epsilon, ...)``; otherwise ``r**2`` is reduced
    to ``b`` in the numerator. What remains is a rational function in SymPy's sparse
    polynomial ring: its numerator is 0, or not: it is returned as an expression, ``0`` or not.
    """
    expr = close(expr) if expr.has(sp.Sum) else expr
    expr = expr.xreplace({p: _split_root(p) for p in _scan(expr)[0]})
    roots, atoms, dens = _scan(expr)
    if any(p.exp.q != 2 for p in roots):
        raise NotImplementedError("residual() handles square roots only.")
    bases = sorted({p.base for p in roots}, key=sp.default_sort_key)
    rs = [sp.Symbol(f"r_{n}", positive=True) for n in range(len(bases))]
    expr = expr.xreplace({p: rs[bases.index(p.base)] ** (2 * p.exp) for p in roots})
    reduce_ = list(zip(rs, bases, strict=True))
    if len(bases) == 1:
        eps_of_r = _solve_for_eps(bases[0], rs[0])
        if eps_of_r is not None:
            expr = expr.xreplace({eps: eps_of_r})
            reduce_ = []
    elif not bases:  # no root, but perhaps a denominator sigma^2 + eps: the same change of variables
        dens = {d for d in dens if d.has(eps)}
        if len(dens) == 1:
            eps_of_r = _solve_for_eps(dens.pop(), sp.Symbol("r_0", positive=True))
            if eps_of_r is not None:
                expr = expr.xreplace({eps: eps_of_r})
    atoms = set(_scan(expr)[1])
    for _, b in reduce_:
        atoms |= _scan(b)[1]
    if not atoms:
        return sp.nsimplify(expr)
    gens = sorted(atoms, key=sp.default_sort_key)
    ring, *_ = sp.ring(gens, sp.QQ)
    num, den = _fraction(expr, ring, {g: ring.gens[n] for n, g in enumerate(gens)})
    for r, b in reduce_:
        bn, bd = _fraction(b, ring, {g: ring.gens[n] for n, g in enumerate(gens)})
        num = _reduce_root(num, ring, gens.index(r), bn, bd)
    if not num:
        return sp.S.Zero
    return sp.cancel(num.as_expr() / den.as_expr())


def _lcm(p, q):
    """Least common multiple of two polynomials."""
    return q if p == 1 else p.lcm(q)


def _fraction(expr, ring, gens: dict):
    """``expr`` as ``(numerator, denominator)`` polynomials of ``ring``, without any gcd.

    The denominator of a sum is the least common multiple of its terms' denominators (these
    are few and small: constants, powers of r and of the variance); nothing else is cancelled,
    since only "numerator == 0" matters.
    """
    memo: dict = {}

    def rec(e):
        if e in memo:
            return memo[e]
        if e in gens:
            out = (gens[e], ring.one)
        elif e.is_Rational:
            out = (ring(e), ring.one)
        elif e.is_Add:
            parts = [rec(t) for t in e.args]
            lcm = ring.one
            for _, d in parts:
                if d != lcm and d != ring.one:
                    lcm = _lcm(lcm, d)
            out = (sum((n if d == lcm else n * lcm.exquo(d) for n, d in parts), ring.zero), lcm)
        elif e.is_Mul:
            num, den = ring.one, ring.one
            for t in e.args:
                n, d = rec(t)
                num, den = num * n, den * d
            out = (num, den)
        elif e.is_Pow and e.exp.is_Integer:
            n, d = rec(e.base)
            p = int(e.exp)
            out = (n**p, d**p) if p >= 0 else (d ** (-p), n ** (-p))
        else:
            raise NotImplementedError(f"residual() cannot handle {e} ({type(e).__name__}).")
        memo[e] = out
        return out

    num, den = rec(expr)
    if den.LC < 0:
        num, den = -num, -den
    return num, den


def _reduce_root(num, ring, pos, p, q):
    """``num``, a polynomial in ``r = ring.gens[pos]``, with ``r**2 = p/q``, times a power of ``q``."""
    if not num:
        return num
    by_power: dict[int, object] = {}
    for monom, coeff in num.terms():
        rest = list(monom)
        e, rest[pos] = rest[pos], 0
        by_power[e] = by_power.get(e, ring.zero) + ring.from_dict({tuple(rest): coeff})
    top = max(by_power) // 2
    r = ring.gens[pos]
    return sum((c * p ** (e // 2) * q ** (top - e // 2) * r ** (e % 2) for e, c in by_power.items()), ring.zero)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Identity:
    """A claim ``lhs == rhs`` and its proof: the simplified differences, one per case checked.

    ``mm`` is the batch size it was proven for: the symbol ``m`` or an integer. A claim about
    every example of a concrete batch has one residual per example (and per entry, for a
    matrix); ``lhs`` and ``rhs`` show the first case.
    """

    name: str
    lhs: object
    rhs: object
    mm: object
    residuals: tuple

    @property
    def holds(self) -> bool:
        """True when every difference simplified to exactly 0."""
        return all(r == 0 for r in self.residuals)

    @property
    def difference(self):
        """``0`` when the claim holds, else the first difference that did not vanish."""
        return next((r for r in self.residuals if r != 0), sp.S.Zero)

    def _repr_latex_(self) -> str:
        return "$\\displaystyle " + latex(self) + "$"

    def __str__(self) -> str:
        where = "for every m" if self.mm is m else f"for m = {self.mm}"
        return f"{self.name}: {'proven' if self.holds else 'FAILS'} {where} (difference {self.difference})"


def claim(name: str, mm, cases) -> Identity:
    """An :class:`Identity` from ``cases``, an iterable of ``(lhs, rhs)`` pairs that must all be equal."""
    cases = list(cases)
    return Identity(name, cases[0][0], cases[0][1], mm, tuple(residual(lhs - rhs) for lhs, rhs in cases))


def _per_example(name, mm, at) -> Identity:
    """A claim about every example ``t`` of the batch: ``at(t) -> (lhs, rhs)``."""
    return claim(name, mm, map(at, batch(mm).indices))


def _pairs(b: Batch, upper=False):
    if not b.concrete:
        return [(i, j)]
    return [(r, c) for r in b.indices for c in b.indices if not upper or r <= c]


# --------------------------------------------------------------------------- forward
def mean_of_xhat(mm=m) -> Identity:
    r"""The batch mean of :math:`\hat x` is exactly 0, for every :math:`\epsilon \ge 0`."""
    b = batch(mm)
    return claim("mean of xhat", mm, [(b.sum(b.xhat(j), j) / mm, sp.S.Zero)])


def variance_of_xhat(mm=m) -> Identity:
    r"""The biased batch variance of :math:`\hat x` is :math:`\sigma^2/(\sigma^2+\epsilon)`, not 1."""
    b = batch(mm)
    mean = b.sum(b.xhat(j), j) / mm
    return claim("variance of xhat", mm, [(b.sum((b.xhat(j) - mean) ** 2, j) / mm, b.var / (b.var + eps))])


def variance_limit():
    r"""The limit of :math:`\sigma^2/(\sigma^2+\epsilon)` as :math:`\epsilon \to 0` (1 for :math:`\sigma^2 > 0`),
    and its value when :math:`\sigma^2 = \epsilon`."""
    f = var / (var + eps)
    return {"limit": sp.limit(f, eps, 0), "at_var_eq_eps": f.subs(var, eps), "expr": f}


def output_moments(mm=m) -> tuple[Identity, Identity]:
    r"""Mean :math:`\beta` and biased variance :math:`\gamma^2\sigma^2/(\sigma^2+\epsilon)` of
    :math:`y = \gamma\hat x + \beta`."""
    b = batch(mm)
    mean = b.sum(b.y(j), j) / mm
    v = b.sum((b.y(j) - mean) ** 2, j) / mm
    return (claim("mean of y", mm, [(mean, beta)]),
            claim("variance of y", mm, [(v, gamma**2 * b.var / (b.var + eps))]))


def identity_recovery(mm=m) -> Identity:
    r""":math:`\gamma = \sqrt{\sigma^2+\epsilon}` and :math:`\beta = \mu` give :math:`y_i = x_i` for every :math:`i`."""
    b = batch(mm)
    return _per_example("identity recovery", mm, lambda t: (b.y(t).xreplace({gamma: b.std, beta: b.mu}), x[t]))


def _shift(expr, c):
    """``expr`` with every ``x[.]``, bound or free, replaced by ``x[.] + c``."""
    return expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base == x, lambda e: e + c)


def bias_cancels(mm=m) -> Identity:
    r"""A bias added before BN cancels: :math:`\hat x_i(x + c) = \hat x_i(x)` for every constant :math:`c`."""
    b = batch(mm)
    c = sp.Symbol("c", real=True)
    return _per_example("bias cancels", mm, lambda t: (_shift(b.xhat(t), c), b.xhat(t)))


def central_moment_of_xhat(mm=m, order: int = 3) -> Identity:
    r"""The central moment of order ``order`` of :math:`\hat x` is that of :math:`x` over
    :math:`(\sigma^2+\epsilon)^{order/2}`.

    BN is an affine map within a batch, so every standardized moment (skewness for order 3,
    kurtosis for order 4) of :math:`\hat x` equals that of :math:`x` when :math:`\epsilon = 0`, and
    differs only by powers of :math:`\sigma^2/(\sigma^2+\epsilon)` otherwise: the shape stays.
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be a positive integer, got {order!r}.")
    b = batch(mm)
    lhs = b.sum(b.xhat(j) ** order, j) / mm  # the mean of xhat is 0 (mean_of_xhat)
    rhs = b.sum((x[j] - b.mu) ** order, j) / mm / (b.var + eps) ** sp.Rational(order, 2)
    return claim(f"central moment {order} of xhat", mm, [(lhs, rhs)])


# --------------------------------------------------------------------------- backward: the paper's six equations
def _paper_equations() -> dict:
    s = sp.sqrt(var + eps)
    return {
        "dxhat": (d_xhat[i], dy[i] * gamma),
        "dvar": (d_var, sp.Sum(d_xhat[i] * (x[i] - mu), (i, 1, m)) * sp.Rational(-1, 2)
                 * (var + eps) ** sp.Rational(-3, 2)),
        "dmu": (d_mu, sp.Sum(d_xhat[i] * (-1 / s), (i, 1, m)) + d_var * sp.Sum(-2 * (x[i] - mu), (i, 1, m)) / m),
        "dx": (d_x[i], d_xhat[i] / s + d_var * 2 * (x[i] - mu) / m + d_mu / m),
        "dgamma": (d_gamma, sp.Sum(dy[i] * xhat[i], (i, 1, m))),
        "dbeta": (d_beta, sp.Sum(dy[i], (i, 1, m))),
    }


#: The six chain-rule equations as printed in Sec. 3 of the paper, ``name -> (lhs, rhs)``.
#: ``mu``, ``sigma^2`` and ``xhat_i`` are nodes of the graph (independent symbols).
PAPER_EQUATIONS = _paper_equations()


@functools.lru_cache(maxsize=1)
def chain_rule_equations() -> dict:
    """The six equations derived by SymPy: the reverse-mode chain rule over the graph of Algorithm 1.

    Nodes and their definitions in terms of their parents: ``y_j = gamma xhat_j + beta``,
    ``xhat_j = (x_j - mu) / sqrt(sigma^2 + eps)``, ``sigma^2 = sum_k (x_k - mu)^2 / m``,
    ``mu = sum_k x_k / m``. The adjoint of a node is, summed over its children (and over the
    batch for an indexed child), the child's adjoint times SymPy's partial derivative of the
    child's definition with respect to the node. Returns ``name -> (adjoint, closed rhs)``.
    """
    loss = sp.Sum(dy[j] * (gamma * xhat[j] + beta), (j, 1, m))
    xhat_j = (x[j] - mu) / sp.sqrt(var + eps)
    var_def = sp.Sum((x[_k] - mu) ** 2, (_k, 1, m)) / m
    mu_def = sp.Sum(x[_k], (_k, 1, m)) / m

    def through_xhat(node):  # sum_j dl/dxhat_j * d xhat_j / d node
        return sp.Sum(d_xhat[j] * sp.diff(xhat_j, node), (j, 1, m))

    return {
        "dxhat": (d_xhat[i], close(sp.diff(loss, xhat[i]))),
        "dvar": (d_var, close(through_xhat(var))),
        "dmu": (d_mu, close(through_xhat(mu) + d_var * sp.diff(var_def, mu))),
        "dx": (d_x[i], close(through_xhat(x[i]) + d_var * sp.diff(var_def, x[i]) + d_mu * sp.diff(mu_def, x[i]))),
        "dgamma": (d_gamma, close(sp.diff(loss, gamma))),
        "dbeta": (d_beta, close(sp.diff(loss, beta))),
    }


def check_paper_equations(paper: dict | None = None) -> dict[str, Identity]:
    """Each printed equation (``paper``, default :data:`PAPER_EQUATIONS`) against SymPy's chain rule."""
    paper = PAPER_EQUATIONS if paper is None else paper
    derived = chain_rule_equations()
    out = {}
    for name, (lhs, rhs) in paper.items():
        if name not in derived:
            raise ValueError(f"unknown equation {name!r}; expected one of {sorted(derived)}.")
        if lhs != derived[name][0]:
            raise ValueError(f"equation {name!r} must have the left-hand side {derived[name][0]}, got {lhs}.")
        out[name] = claim(f"paper equation {name}", m, [(rhs, derived[name][1])])
    return out


def _rebind(expr, idx=_k):
    """Every sum over ``i`` rewritten as a sum over ``idx``, so that ``i`` is free to be substituted."""
    return expr.replace(lambda e: isinstance(e, sp.Sum) and e.limits[0][0] == i,
                        lambda e: sp.Sum(e.function.xreplace({i: idx}), (idx, *e.limits[0][1:])))


def _sub_indexed(expr, base, fn):
    return expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base == base, lambda e: fn(e.indices[0]))


def _to_batch(expr, b: Batch):
    """Graph nodes replaced by the batch's own expressions; for a concrete batch, sums written out."""
    expr = _sub_indexed(expr, xhat, b.xhat).xreplace({mu: b.mu, var: b.var})
    if b.concrete:
        expr = expr.xreplace({m: b.m}).doit()
    return expr


def staged_dx(mm=m, t=i, paper: dict | None = None):
    """dl/dx_t by the paper's equations: each adjoint substituted into the next, then the nodes
    set to the batch's statistics (``mu``: the mean, ``sigma^2``: the biased variance)."""
    paper = PAPER_EQUATIONS if paper is None else paper
    eq = {name: _rebind(rhs) for name, (_, rhs) in paper.items()}

    def dxh(idx):
        return eq["dxhat"].xreplace({i: idx})

    d_v = _sub_indexed(eq["dvar"], d_xhat, dxh)
    d_m = _sub_indexed(eq["dmu"], d_xhat, dxh).xreplace({d_var: d_v})
    d = _sub_indexed(eq["dx"], d_xhat, dxh).xreplace({d_var: d_v, d_mu: d_m}).xreplace({i: t})
    return _to_batch(d, batch(mm))


def compact_dx(mm=m, t=i):
    r"""The compact form
    :math:`\frac{\gamma}{m\sqrt{\sigma^2+\epsilon}}\big(m\,dy_t - \sum_k dy_k - \hat x_t \sum_k dy_k \hat x_k\big)`."""
    b = batch(mm)
    return gamma / (mm * b.std) * (mm * dy[t] - b.sum(dy[_k]) - b.xhat(t) * b.sum(dy[_k] * b.xhat(_k)))


def autodiff_dx(mm=m, t=i):
    """SymPy's own derivative ``diff(l, x[t])`` of the explicit forward expression."""
    return sp.diff(batch(mm).loss, x[t])


def staged_equals_compact(mm=m, paper: dict | None = None) -> Identity:
    """The paper's staged equations, composed, equal the compact form, for every example."""
    return _per_example("staged = compact", mm, lambda t: (staged_dx(mm, t, paper), compact_dx(mm, t)))


def autodiff_equals_compact(mm=m, compact=None) -> Identity:
    """SymPy's derivative of the loss with respect to ``x_i`` equals the compact form, for every example.

    ``compact``: a function ``(mm, t) -> expression`` to check instead of :func:`compact_dx`.
    """
    compact = compact_dx if compact is None else compact
    return _per_example("autodiff = compact", mm, lambda t: (autodiff_dx(mm, t), compact(mm, t)))


def autodiff_equals_staged(mm=m, paper: dict | None = None) -> Identity:
    """SymPy's derivative of the loss with respect to ``x_i`` equals the paper's staged equations."""
    return _per_example("autodiff = staged", mm, lambda t: (autodiff_dx(mm, t), staged_dx(mm, t, paper)))


def autodiff_dgamma_dbeta(mm=m) -> tuple[Identity, Identity]:
    """SymPy's derivatives of the loss with respect to gamma and beta against equations (5) and (6)."""
    b = batch(mm)
    return (claim("dl/dgamma", mm, [(sp.diff(b.loss, gamma), b.sum(dy[j] * b.xhat(j), j))]),
            claim("dl/dbeta", mm, [(sp.diff(b.loss, beta), b.sum(dy[j], j))]))


def mu_term_vanishes(mm=m) -> Identity:
    """The second term of equation (3) is 0 at the batch mean: ``sum_i -2 (x_i - mu) / m = 0``."""
    b = batch(mm)
    return claim("mu term vanishes", mm, [(b.sum(-2 * (x[j] - b.mu), j) / mm, sp.S.Zero)])


# --------------------------------------------------------------------------- the Jacobian
def jacobian(mm=m, r=i, c=j, scale=1):
    """SymPy's ``d xhat_r / d x_c``; with ``scale``, that of the batch ``scale * x`` w.r.t. ``scale * x_c``."""
    b = batch(mm)
    return sp.diff(b.xhat(r, scale), x[c]) / scale


def _jacobian_closed(b: Batch, r, c):
    return (sp.KroneckerDelta(r, c) - sp.S.One / b.m - b.xhat(r) * b.xhat(c) / b.m) / b.std


def jacobian_formula(mm=m) -> Identity:
    r""":math:`\partial\hat x_i/\partial x_j = (\delta_{ij} - 1/m - \hat x_i\hat x_j/m)/\sqrt{\sigma^2+\epsilon}`
    for every :math:`\epsilon`."""
    b = batch(mm)
    return claim("Jacobian", mm, [(jacobian(mm, r, c), _jacobian_closed(b, r, c)) for r, c in _pairs(b)])


def jacobian_rows_sum_to_zero(mm=m) -> Identity:
    r""":math:`\sum_j \partial\hat x_i/\partial x_j = 0`: shifting the whole batch changes no :math:`\hat x_i`."""
    b = batch(mm)
    return _per_example("Jacobian rows sum to 0", mm, lambda t: (b.sum(jacobian(mm, t, j), j), sp.S.Zero))


def jacobian_symmetric(mm=m) -> Identity:
    r""":math:`\partial\hat x_i/\partial x_j = \partial\hat x_j/\partial x_i`."""
    b = batch(mm)
    return claim("Jacobian symmetric", mm, [(jacobian(mm, r, c), jacobian(mm, c, r)) for r, c in _pairs(b, upper=True)])


def jacobian_on_xhat(mm=m) -> Identity:
    r""":math:`\sum_j (\partial\hat x_i/\partial x_j)\,\hat x_j = \epsilon\,\hat x_i/(\sigma^2+\epsilon)^{3/2}`
    (0 for :math:`\epsilon = 0`)."""
    b = batch(mm)
    return _per_example("Jacobian applied to xhat", mm,
                        lambda t: (b.sum(jacobian(mm, t, j) * b.xhat(j), j),
                                   eps / (b.var + eps) ** sp.Rational(3, 2) * b.xhat(t)))


def gradient_sums_to_zero(mm=m) -> Identity:
    r""":math:`\sum_i \partial\ell/\partial x_i = 0` exactly: the gradient is orthogonal to :math:`\mathbf 1`."""
    b = batch(mm)
    lhs = sp.Add(*(autodiff_dx(mm, t) for t in b.indices)) if b.concrete else b.sum(autodiff_dx(mm, j), j)
    return claim("gradient orthogonal to 1", mm, [(lhs, sp.S.Zero)])


def gradient_along_xhat(mm=m) -> Identity:
    r""":math:`\sum_i \hat x_i\,\partial\ell/\partial x_i =
    \gamma\epsilon/(\sigma^2+\epsilon)^{3/2}\,\sum_i dy_i\hat x_i` (0 for :math:`\epsilon = 0`)."""
    b = batch(mm)
    if b.concrete:
        lhs = sp.Add(*(b.xhat(t) * autodiff_dx(mm, t) for t in b.indices))
    else:
        lhs = b.sum(b.xhat(j) * autodiff_dx(mm, j), j)
    rhs = gamma * eps / (b.var + eps) ** sp.Rational(3, 2) * b.sum(dy[j] * b.xhat(j), j)
    return claim("gradient along xhat", mm, [(lhs, rhs)])


def projector_square(mm=m) -> Identity:
    r""":math:`P = I - \mathbf{1}\mathbf{1}^\top/m - \hat x\hat x^\top/m` satisfies
    :math:`P^2 = P - \frac{\epsilon}{\sigma^2+\epsilon}\,\hat x\hat x^\top/m`.

    :math:`P = \sqrt{\sigma^2+\epsilon}\;\partial\hat x/\partial x` (:func:`jacobian_formula`). For
    :math:`\epsilon = 0`, :math:`P^2 = P`: with :math:`P` symmetric, the backward pass multiplies
    ``dy`` by the orthogonal projector onto the vectors orthogonal to both :math:`\mathbf 1` and
    :math:`\hat x`. Checked entry by entry.
    """
    b = batch(mm)

    def P(r, c):
        return sp.KroneckerDelta(r, c) - sp.S.One / mm - b.xhat(r) * b.xhat(c) / mm

    def squared(r, c):
        if b.concrete:
            return sp.Add(*(P(r, q) * P(q, c) for q in b.indices))
        return b.sum(P(r, _k) * P(_k, c))

    def rhs(r, c):
        return P(r, c) - eps / (b.var + eps) * b.xhat(r) * b.xhat(c) / mm

    return claim("P^2", mm, [(squared(r, c), rhs(r, c)) for r, c in _pairs(b, upper=True)])


# --------------------------------------------------------------------------- scale invariance (Sec. 3.3)
def scale_forward(mm=m) -> Identity:
    r""":math:`\hat x_i(a x;\ \epsilon) = \hat x_i(x;\ \epsilon/a^2)` for :math:`a > 0`; for :math:`\epsilon = 0`,
    :math:`\mathrm{BN}(a x) = \mathrm{BN}(x)`."""
    b = batch(mm)
    return _per_example("BN(a x) with eps = BN(x) with eps/a^2", mm,
                        lambda t: (b.xhat(t, scale=a), b.xhat(t).xreplace({eps: eps / a**2})))


def scale_jacobian(mm=m) -> Identity:
    r""":math:`\partial\hat x_i(a x;\epsilon)/\partial(a x_j) = \frac1a\,\partial\hat x_i(x;\epsilon/a^2)/\partial x_j`
    for :math:`a > 0`."""
    b = batch(mm)
    return claim("Jacobian of BN(a x)", mm,
                 [(jacobian(mm, r, c, scale=a), jacobian(mm, r, c).xreplace({eps: eps / a**2}) / a)
                  for r, c in _pairs(b)])


def scale_layer(mm: int = 3, n: int = 2) -> dict[str, Identity]:
    r"""Sec. 3.3 on a linear unit :math:`x_t = \sum_c w_c u_{t,c}`, by SymPy's derivatives, for a concrete batch.

    With :math:`a > 0`, for every example :math:`t`:
    ``"u"``: :math:`\partial\hat x_t/\partial u_{s,c}` at weights :math:`a w` equals the same
    derivative at :math:`w` with :math:`\epsilon/a^2` in place of :math:`\epsilon`, for every input
    :math:`u_{s,c}`; ``"w"``: :math:`\partial\hat x_t/\partial(a w_c)` at :math:`a w` equals
    :math:`\frac1a\,\partial\hat x_t/\partial w_c` at :math:`w`, with :math:`\epsilon/a^2`. For
    :math:`\epsilon = 0` these are the paper's two equations.
    """
    if isinstance(mm, bool) or not isinstance(mm, int) or mm < 2 or isinstance(n, bool) \
            or not isinstance(n, int) or n < 1:
        raise ValueError(f"mm must be an integer of at least 2 and n a positive integer, got mm={mm!r}, n={n!r}.")
    b = batch(mm)
    w = sp.symbols(f"w_1:{n + 1}", real=True)
    v = sp.symbols(f"v_1:{n + 1}", real=True)  # v = a w: the scaled weights as variables of their own
    u = [[sp.Symbol(f"u_{t}{c}", real=True) for c in range(1, n + 1)] for t in b.indices]
    at_w = {x[t]: sum(w[c] * u[t - 1][c] for c in range(n)) for t in b.indices}
    at_v = {x[t]: sum(v[c] * u[t - 1][c] for c in range(n)) for t in b.indices}
    v_is_aw = dict(zip(v, [a * wc for wc in w], strict=True))
    cases: dict[str, list] = {"u": [], "w": []}
    for t in b.indices:
        scaled = b.xhat(t).xreplace(at_v)  # xhat_t at weights v, with eps
        plain = b.xhat(t).xreplace(at_w).xreplace({eps: eps / a**2})  # xhat_t at weights w, with eps / a^2
        for s in range(mm):
            for c in range(n):
                cases["u"].append((sp.diff(scaled, u[s][c]).xreplace(v_is_aw), sp.diff(plain, u[s][c])))
        for c in range(n):
            cases["w"].append((sp.diff(scaled, v[c]).xreplace(v_is_aw), sp.diff(plain, w[c]) / a))
    return {"u": claim("d BN/du under w -> a w", mm, cases["u"]),
            "w": claim("d BN/dw under w -> a w", mm, cases["w"])}


def weight_direction(mm=m) -> Identity:
    r""":math:`\sum_j (\partial\hat x_i/\partial x_j)\,x_j = \epsilon\,\hat x_i/(\sigma^2+\epsilon)`: Euler's relation.

    For a unit :math:`x_t = w^\top u_t` the chain rule gives
    :math:`\sum_c w_c\,\partial\hat x_i/\partial w_c = \sum_j (\partial\hat x_i/\partial x_j) x_j`,
    so for :math:`\epsilon = 0` the gradient of any loss with respect to :math:`w` is orthogonal to :math:`w`.
    """
    b = batch(mm)
    return _per_example("Jacobian applied to x", mm,
                        lambda t: (b.sum(jacobian(mm, t, j) * x[j], j), eps / (b.var + eps) * b.xhat(t)))


# --------------------------------------------------------------------------- convolutional BN
def conv_effective_batch(shape: tuple = (2, 2, 2)) -> Identity:
    r"""BN of one feature map of shape ``(m, p, q)``: SymPy's gradient is the compact form with :math:`m' = mpq`.

    The statistics are the mean and biased variance over all :math:`m p q` values of the feature
    map; SymPy differentiates the explicit forward pass with respect to every value.
    """
    if (not isinstance(shape, tuple) or len(shape) != 3
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape)
            or shape[0] * shape[1] * shape[2] < 2):
        raise ValueError(f"shape must be a tuple (m, p, q) of positive integers with m*p*q >= 2, got {shape!r}.")
    X = sp.IndexedBase("x", real=True)
    G = sp.IndexedBase("dy", real=True)
    cells = [(n, h, w) for n in range(1, shape[0] + 1) for h in range(1, shape[1] + 1) for w in range(1, shape[2] + 1)]
    mp = len(cells)
    mean = sp.Add(*(X[c] for c in cells)) / mp
    s = sp.sqrt(sp.Add(*((X[c] - mean) ** 2 for c in cells)) / mp + eps)
    xh = {c: (X[c] - mean) / s for c in cells}
    loss = sp.Add(*(G[c] * (gamma * xh[c] + beta) for c in cells))
    sum_g = sp.Add(*(G[c] for c in cells))
    sum_gx = sp.Add(*(G[c] * xh[c] for c in cells))
    return claim(f"conv BN: m' = {shape[0]}*{shape[1]}*{shape[2]} = {mp}", mp,
                 [(sp.diff(loss, X[c]), gamma / (mp * s) * (mp * G[c] - sum_g - xh[c] * sum_gx)) for c in cells])


# --------------------------------------------------------------------------- sigmoid
def sigmoid_linear_fit(scale: float = 1.0, shift: float = 0.0, dps: int = 30) -> dict[str, float]:
    r"""How linear the sigmoid is on :math:`z = \gamma u + \beta` with :math:`u \sim N(0, 1)`.

    Returns ``r2``: the share of the variance of :math:`\sigma(z)` that the best straight line
    in :math:`u` explains; ``lo``, ``hi``: the central 95% interval of :math:`z`; ``range_95``:
    the part of the sigmoid's range (0, 1) that this interval maps to; ``slope_edge``: the
    sigmoid's slope at the edge of the interval farther from 0, relative to its maximum 1/4.
    The Gaussian integrals are computed by mpmath's quadrature (SymPy's numerics) at ``dps``
    decimal digits.
    """
    import mpmath

    with mpmath.workdps(dps):
        g, c = mpmath.mpf(scale), mpmath.mpf(shift)

        def sig(z):
            return 1 / (1 + mpmath.exp(-z))

        def expect(f):
            return mpmath.quad(lambda u: mpmath.npdf(u) * f(u), [-mpmath.inf, 0, mpmath.inf])

        mean = expect(lambda u: sig(g * u + c))
        var_s = expect(lambda u: (sig(g * u + c) - mean) ** 2)
        cov = expect(lambda u: sig(g * u + c) * u)  # E[u] = 0 and Var[u] = 1
        z95 = mpmath.sqrt(2) * mpmath.erfinv(mpmath.mpf("0.95"))
        lo, hi = c - z95 * abs(g), c + z95 * abs(g)
        edge = max(abs(lo), abs(hi))
        return {
            "r2": float(cov**2 / var_s),
            "lo": float(lo),
            "hi": float(hi),
            "range_95": float(sig(hi) - sig(lo)),
            "slope_edge": float(4 * sig(edge) * (1 - sig(edge))),
        }


# --------------------------------------------------------------------------- numeric
def _sum_out_deltas(expr):
    """``expr`` with each Kronecker delta inside a sum summed out (rule 2); the sums themselves kept."""
    def one(s):
        if not s.function.has(sp.KroneckerDelta):
            return s
        if len(s.limits) > 1:
            return one(sp.Sum(one(sp.Sum(s.function, s.limits[0])), *s.limits[1:]))
        (idx, lo, hi), = s.limits
        terms = []
        for term in sp.Add.make_args(sp.expand_mul(s.function)):
            summed = _sum_out_delta(term, idx)
            terms.append(sp.Sum(term, (idx, lo, hi)) if summed is None else summed)
        return sp.Add(*terms)

    return sp.sympify(expr).replace(lambda e: isinstance(e, sp.Sum), one)


def numeric():
    """NumPy functions lambdified from this module's SymPy expressions, for every batch size.

    The sums stay sums (``lambdify`` writes them as Python loops over the batch), so ``m`` is
    an argument. ``x`` and ``dy`` are arrays of shape ``(m + 1, C)`` whose row 0 is padding
    (SymPy's indices start at 1); ``t``, ``r``, ``c`` are 1-based indices, integers or integer
    arrays. Returns a dict of functions:

    - ``xhat(x, m, t, eps)`` and ``y(x, m, t, gamma, beta, eps)``: Algorithm 1;
    - ``dx_autodiff``, ``dx_compact``, ``dx_staged``: ``(x, dy, m, t, gamma, eps)``, SymPy's
      derivative, the compact form and the paper's equations composed;
    - ``dgamma(x, dy, m, eps)``, ``dbeta(dy, m)``: SymPy's derivatives;
    - ``jacobian(x, m, r, c, eps)``: SymPy's ``d xhat_r / d x_c``;
    - ``var_xhat(var, eps)``: the variance of xhat that :func:`variance_of_xhat` proves.
    """
    return dict(_numeric())


@functools.lru_cache(maxsize=1)
def _numeric():
    import numpy as np

    b = batch(m)
    t, r, c = sp.symbols("t r c", integer=True, positive=True)
    kd = sp.Function("kronecker")
    mods = [{"kronecker": lambda p, q: np.equal(p, q).astype(float)}, "numpy"]

    def lam(args, expr):
        expr = _sum_out_deltas(expr).replace(lambda e: isinstance(e, sp.KroneckerDelta), lambda e: kd(*e.args))
        return sp.lambdify(args, expr, modules=mods)

    return {
        "xhat": lam((x, m, t, eps), b.xhat(t)),
        "y": lam((x, m, t, gamma, beta, eps), b.y(t)),
        "dx_autodiff": lam((x, dy, m, t, gamma, eps), autodiff_dx(m, t)),
        "dx_compact": lam((x, dy, m, t, gamma, eps), compact_dx(m, t)),
        "dx_staged": lam((x, dy, m, t, gamma, eps), staged_dx(m, t)),
        "dgamma": lam((x, dy, m, eps), sp.diff(b.loss, gamma)),
        "dbeta": lam((dy, m), sp.diff(b.loss, beta)),
        "jacobian": lam((x, m, r, c, eps), jacobian(m, r, c)),
        "var_xhat": lam((var, eps), var / (var + eps)),
    }


# --------------------------------------------------------------------------- display
def display(expr, mm=m, hat: bool = True):
    r"""``expr`` rewritten for reading: the batch's mean and variance as :math:`\mu`, :math:`\sigma^2`,
    and (``hat=True``) :math:`x_t - \mu` as :math:`\hat x_t\sqrt{\sigma^2+\epsilon}`, so that :math:`\hat x_t` appears.

    Only the notation changes; :func:`residual` of the difference to ``expr`` is 0 (tested).
    """
    b = batch(mm)
    if b.concrete:
        raise ValueError("display() rewrites the expressions of the symbolic batch (mm = m) only.")
    e = sp.sympify(expr).xreplace({sp.Sum((x[_k] - b.mu) ** 2, (_k, 1, m)): m * var})
    e = e.xreplace({sp.Sum(x[_k], (_k, 1, m)): m * mu})

    def centred(z):
        if not (z.is_Add and len(z.args) == 2 and -mu in z.args):
            return None
        other = z.args[0] if z.args[1] == -mu else z.args[1]
        return other if isinstance(other, sp.Indexed) and other.base == x else None

    if not hat:
        return e
    return e.replace(lambda z: centred(z) is not None, lambda z: xhat[centred(z).indices[0]] * sp.sqrt(var + eps))


def numeric_report(forward, backward, m_values=(2, 5, 64), channels: int = 3, eps_value: float = 1e-5,
                   seed: int = 0) -> dict[str, float]:
    """The lambdified SymPy results (:func:`numeric`) against an implementation, at random points.

    ``forward(x, gamma, beta, eps) -> (y, cache)`` and ``backward(dy, cache) -> (dx, dgamma,
    dbeta)`` are the functions to check (``bnlib.functional.forward`` and ``backward`` or
    ``backward_staged``); the cache must hold ``xhat`` and ``var``. For every batch size in
    ``m_values``, float64 data with a different offset and spread per channel are drawn from
    ``numpy.random.default_rng(seed)``. Returns, per quantity, the largest relative error
    ``max|sympy - impl| / max|impl|`` over all batch sizes: ``y``, ``dx`` (against each of
    SymPy's derivative, the compact form and the paper's equations composed), ``dgamma``,
    ``dbeta``, ``mean_xhat`` (absolute: the mean is 0), ``var_xhat`` (against
    sigma^2/(sigma^2+eps)) and ``jacobian`` (each column of SymPy's Jacobian against the
    backward pass of a basis vector).
    """
    import numpy as np

    fns = numeric()
    rng = np.random.default_rng(seed)
    err: dict[str, float] = {}

    def rel(a, b):
        return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))

    def note(name, value):
        err[name] = max(err.get(name, 0.0), value)

    for mv in m_values:
        xv = rng.normal(size=(mv, channels)) * rng.uniform(0.5, 3.0, channels) + rng.normal(0, 5, channels)
        g, bt, d = rng.normal(size=channels), rng.normal(size=channels), rng.normal(size=(mv, channels))
        y, cache = forward(xv, g, bt, eps_value)
        dx, dg, db = backward(d, cache)
        pad = np.zeros((1, channels))
        X, D, t = np.vstack([pad, xv]), np.vstack([pad, d]), np.arange(1, mv + 1)
        note("y", rel(fns["y"](X, mv, t, g, bt, eps_value), y))
        for kind in ("autodiff", "compact", "staged"):
            note(f"dx_{kind}", rel(fns[f"dx_{kind}"](X, D, mv, t, g, eps_value), dx))
        note("dgamma", rel(fns["dgamma"](X, D, mv, eps_value), dg))
        note("dbeta", rel(fns["dbeta"](D, mv), db))
        note("mean_xhat", float(np.max(np.abs(cache["xhat"].mean(axis=0)))))
        note("var_xhat", rel(fns["var_xhat"](cache["var"], eps_value), cache["xhat"].var(axis=0)))
        # the Jacobian of channel 0: the backward pass of dy = e_c (gamma = 1) is row c of J
        x0 = np.repeat(xv[:, :1], mv, axis=1)
        _, c0 = forward(x0, np.ones(mv), np.zeros(mv), eps_value)
        rows = backward(np.eye(mv), c0)[0].T
        jac = fns["jacobian"](X[:, 0], mv, t[:, None], t[None, :], eps_value)
        note("jacobian", rel(jac, rows))
    return err
