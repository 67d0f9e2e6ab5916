"""The ground of :mod:`bnlib.symbolic`: the symbols, the batch (Algorithm 1), how a proof is closed,
:class:`Identity` and :func:`claim`, and the LaTeX of the chapters' notation.

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
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import sympy as sp
from sympy.printing.latex import LatexPrinter

__all__ = [
    "m", "i", "j", "eps", "gamma", "beta", "a", "x", "dy", "mu", "var", "xhat",
    "d_xhat", "d_var", "d_mu", "d_x", "d_gamma", "d_beta", "CONCRETE_MS",
    "Identity", "Batch", "batch", "close", "residual", "claim", "latex", "display", "equation",
    "power_of_ten", "decimal_exponent",
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


def batch(mm=m) -> Batch:
    """The (cached) :class:`Batch` of size ``mm``: the symbol ``m`` or an integer of at least 2 (a Python or
    NumPy integer)."""
    if not (mm is m or (_is_int(mm) and mm >= 2)):
        raise ValueError(f"mm must be the symbol m or an integer of at least 2 (a batch size), got {mm!r}.")
    return _batch(mm if mm is m else int(mm))


@functools.cache
def _batch(mm) -> Batch:
    return Batch(mm)


def _is_int(v) -> bool:
    """A Python or NumPy integer, not a bool (NumPy is not imported for this: its integers have ``__index__``)."""
    return not isinstance(v, bool) and type(v).__name__ != "bool_" and (
        isinstance(v, int) or (hasattr(v, "__index__") and hasattr(v, "dtype")))


def _is_real(v) -> bool:
    """A Python or NumPy real number, not a bool."""
    return _is_int(v) or (not isinstance(v, bool) and (isinstance(v, float) or (
        hasattr(v, "dtype") and getattr(v.dtype, "kind", "") == "f" and getattr(v, "ndim", 1) == 0)))


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
    return _as_expression(expr, "close").replace(lambda e: isinstance(e, sp.Sum), _close_sum)


def _as_expression(expr, who: str):
    """``expr`` as a SymPy object; numbers are converted, text is refused (SymPy would evaluate it as code)."""
    if isinstance(expr, (str, bytes)):
        raise TypeError(f"{who}() was given text ({expr!r}); it takes a SymPy expression (or a number), and "
                        "parses nothing from strings.")
    try:
        return sp.sympify(expr, strict=True)
    except sp.SympifyError:
        raise TypeError(f"{who}() takes a SymPy expression (or a number) as expr, got {type(expr).__name__}.") \
            from None


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
    expr = _as_expression(expr, "residual")
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


# --------------------------------------------------------------------------- the chapters' notation
def display(expr, mm=m, hat: bool = True):
    r"""``expr`` rewritten for reading: the batch's mean and variance as :math:`\mu`, :math:`\sigma^2`,
    and (``hat=True``) :math:`x_t - \mu` as :math:`\hat x_t\sqrt{\sigma^2+\epsilon}`, so that :math:`\hat x_t` appears.

    Only the notation changes; :func:`residual` of the difference to ``expr`` is 0 (tested).
    """
    b = batch(mm)
    if b.concrete:
        raise ValueError("display() rewrites the expressions of the symbolic batch (mm = m) only.")
    e = _as_expression(expr, "display").xreplace({sp.Sum((x[_k] - b.mu) ** 2, (_k, 1, m)): m * var})
    e = e.xreplace({sp.Sum(x[_k], (_k, 1, m)): m * mu})

    def centred(z):
        if not (z.is_Add and len(z.args) == 2 and -mu in z.args):
            return None
        other = z.args[0] if z.args[1] == -mu else z.args[1]
        return other if isinstance(other, sp.Indexed) and other.base == x else None

    if not hat:
        return e
    return e.replace(lambda z: centred(z) is not None, lambda z: xhat[centred(z).indices[0]] * sp.sqrt(var + eps))


def equation(*sides, hat: bool = True, rewrite: bool = True) -> str:
    r"""LaTeX ``side_1 = side_2 = ...`` of an :class:`Identity` (its two sides) or of the given sides.

    A side is a SymPy expression, written in the chapters' notation (:func:`display`, with ``hat``) unless
    ``rewrite`` is False, or LaTeX text, kept as it is.
    """
    if len(sides) == 1 and isinstance(sides[0], Identity):
        sides = (sides[0].lhs, sides[0].rhs)
    if len(sides) < 2:
        raise ValueError(f"an equation needs an Identity or at least two sides, got {len(sides)} side(s).")
    return " = ".join(s if isinstance(s, str) else latex(display(s, hat=hat) if rewrite else s) for s in sides)


def power_of_ten(value: float) -> str:
    """The power of ten nearest a positive ``value`` as inline LaTeX: ``1e-6`` -> ``$10^{-6}$``."""
    return f"$10^{{{decimal_exponent(value)}}}$"


def decimal_exponent(value: float) -> int:
    """The exponent of the power of ten nearest a positive ``value`` on a log scale (``3e5`` -> 5)."""
    if not _is_real(value) or not value > 0 or not math.isfinite(value):
        raise ValueError(f"value must be a positive finite number (decimal_exponent), got {value!r}.")
    return int(round(math.log10(value)))
