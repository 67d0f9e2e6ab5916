"""The why chapter's measures and the claims ledger's verdicts (bnlib.reports), on tiny hand-made results
whose answers are known, plus the checks that stand on an independent reference (torch autograd, the
documented noise distribution, the training engine itself)."""

from __future__ import annotations

import math
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402
from seeded import seeded

from bnlib import analysis as A  # noqa: E402
from bnlib import identities as ID  # noqa: E402
from bnlib import models  # noqa: E402
from bnlib import train as T  # noqa: E402
from bnlib.plots import why as PW  # noqa: E402
from bnlib.reports import why as RW  # noqa: E402

# Several hand-made results differ by exactly the same factor at every seed, up to rounding: scipy's t test warns
# that such nearly identical differences lose precision; the intervals are then zero-width, as intended.
pytestmark = pytest.mark.filterwarnings("ignore:Precision loss occurred in moment calculation:RuntimeWarning")


def _run(norm=None, steps=(0, 10, 20, 30), summary=None, curves=None, analysis=None, **cfg):
    config = {"norm": norm, "lr": 0.1, "dropout": 0.0, "weight_decay": 0.0, "lr_decay": 1.0, "lr_decay_every": 0,
              "seed": 0, "depth": 3, "batch_size": 60, "batch_sampler": "iid", "test_subset": 0, "model": "mlp",
              "sizes": [784, 4, 4, 10], "probe_units": [0, 1], "init_sigma": 0.1, **cfg}
    c = {"step": list(steps)}
    c.update(curves or {})
    s = {"diverged_at": None, "steps_done": steps[-1] if steps else 0}
    s.update(summary or {})
    return {"config": config, "curves": c, "summary": s, "analysis": analysis or {}}


def _acc_run(accs, final=None, norm=None, diverged_at=None, step=100, **cfg):
    """A run whose test accuracy is ``accs`` at steps 0, step, 2 step, ... (for the speed-up and sweep rules)."""
    steps = [i * step for i in range(len(accs))]
    final = accs[-1] if final is None and not diverged_at else final
    return _run(norm, steps, summary={"final_test_acc": final, "best_test_acc": max(accs), "diverged_at": diverged_at,
                                      "steps_done": steps[-1]},
                curves={"test_acc": list(accs), "saturated": [[0.0, 0.0]] * len(accs)}, **cfg)


# --------------------------------------------------------------------------- noisy BN: the draws
def test_noisy_shift_draws_follow_the_documented_distribution():
    # NoisyShift's docstring: b_t ~ N(sin(t / 200), 0.5^2), s_t ~ U(1, 2), per unit, from its own generator.
    c, k, seed = 5, 30, 7
    scale, shift = A.noisy_shift_draws(c, seed, k)
    gen = torch.Generator().manual_seed(seed)
    for t in range(1, k + 1):
        b = math.sin(t / 200.0) + 0.5 * torch.randn(c, generator=gen)
        s = 1.0 + 1.0 * torch.rand(c, generator=gen)
        np.testing.assert_allclose(shift[t - 1], b.double().numpy(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(scale[t - 1], s.double().numpy(), rtol=0, atol=1e-6)
    assert scale.shape == shift.shape == (k, c) and scale.min() >= 1.0 and scale.max() <= 2.0


def test_noisy_shift_draws_are_the_ones_training_used():
    """The engine calls each NoisyShift once per training step and never otherwise in training mode, even with
    recorders and evaluations: after k steps the next draw is row k of noisy_shift_draws."""
    gen = torch.Generator().manual_seed(0)
    data = T.Data(torch.randn(256, 784, generator=gen), torch.randint(0, 10, (256,), generator=gen),
                  torch.randn(64, 784, generator=gen), torch.randint(0, 10, (64,), generator=gen))
    k = 7
    cfg = T.RunConfig(sizes=(784, 6, 6, 10), norm="noisy", steps=k, record_every=3, batch_size=16, probe_batch=32,
                      probe_units=(0, 1), recorders=("ics", "landscape"), seed=3)
    model = T.train(cfg, data=data)["model"]
    layers = [m for m in model.modules() if isinstance(m, models.NoisyShift)]
    assert len(layers) == 2
    for i, layer in enumerate(layers):
        assert layer.steps == k
        scale, shift = A.noisy_shift_draws(6, cfg.seed + i, k + 1)
        x = torch.randn(3, 6, dtype=torch.float64, generator=gen)
        with torch.no_grad():
            y = layer.train()(x)
        np.testing.assert_allclose(y.numpy(), x.numpy() * scale[k] + shift[k], rtol=1e-12, atol=1e-12)


def test_noisy_shift_draws_rejects_bad_sizes():
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        A.noisy_shift_draws(4, 0, 0)
    with pytest.raises(ValueError, match="num_features must be a positive integer"):
        A.noisy_shift_draws(2.5, 0, 3)


# --------------------------------------------------------------------------- noisy BN: the shift training sees
def _pct_run(norm, medians, spread=2.0, steps=(0, 10, 20, 30)):
    """One hidden layer, one probed unit: percentiles (m - spread/2, m, m + spread/2) at each record."""
    pct = [[[[m - spread / 2, m, m + spread / 2]]] for m in medians]
    return _run(norm, steps, curves={"percentiles": pct}, sizes=[784, 3, 10], probe_units=[1])


def _draws(steps=31, c=3, scale=1.0, shift_at=None):
    scale_a = np.full((steps, c), float(scale))
    shift_a = np.zeros((steps, c))
    for t, v in (shift_at or {}).items():
        shift_a[t] = v
    return {0: (scale_a, shift_a)}


def test_as_trained_applies_the_next_steps_draw():
    run = _pct_run("noisy", [0.0, 1.0, 2.0, 3.0])
    scale = np.arange(31 * 3, dtype=float).reshape(31, 3) / 50 + 1
    shift = -np.arange(31 * 3, dtype=float).reshape(31, 3) / 10
    out = RW.as_trained(run, {0: (scale, shift)})
    for r, step in enumerate(run["curves"]["step"]):
        p = np.array(run["curves"]["percentiles"][r][0][0])
        # the record after step t is seen by step t + 1, whose draw is row t; unit 1 is column 1
        np.testing.assert_allclose(out["curves"]["percentiles"][r][0][0], scale[step, 1] * p + shift[step, 1])
    assert run["curves"]["percentiles"][1][0][0] == [0.0, 1.0, 2.0]  # the input run is left alone
    plain = _pct_run(None, [0.0, 1.0, 2.0, 3.0])
    assert RW.as_trained(plain) is plain
    with pytest.raises(ValueError, match="draws for 20 steps"):
        RW.as_trained(run, {0: (scale[:20], shift[:20])})


def test_why_shift_uses_the_mnist_drift_measure_on_what_training_sees():
    res = {"runs": {"none": _pct_run(None, [5.0, 0.0, 0.5, 0.25]),
                    "noisy": _pct_run("noisy", [0.0, 0.0, 0.0, 0.0])}}
    # from the first record after step 0: medians 0, 0.5, 0.25 -> range 0.5; spread 2 -> relative 0.25
    # noisy: eval-mode medians all 0, shifted by the draws of steps 11, 21, 31 (rows 10, 20, 30): 0, 2, 1
    out = RW.why_shift(res, _draws(shift_at={10: 0.0, 20: 2.0, 30: 1.0}))
    assert out["none"]["range"] == pytest.approx(0.5) and out["none"]["relative"] == pytest.approx(0.25)
    assert out["noisy"]["range"] == pytest.approx(2.0) and out["noisy"]["relative"] == pytest.approx(1.0)
    doubled = RW.why_shift({"runs": {"noisy": res["runs"]["noisy"]}}, _draws(scale=2.0, shift_at={20: 2.0}))
    assert doubled["noisy"]["width_ratio"] == pytest.approx(1.0) and doubled["noisy"]["relative"] == pytest.approx(0.5)


# --------------------------------------------------------------------------- ICS and the landscape
def _ics_run(l2, cos, norm=None):
    recs = [{"l2": [None, *a], "cos": [None, *b]} for a, b in zip(l2, cos, strict=True)]
    return _run(norm, [0] + [10 * (i + 1) for i in range(len(recs))], curves={"ics": recs})


def test_ics_summary():
    s = RW.ics_summary(_ics_run([[1.0, 2.0], [3.0, 4.0], [5.0, 0.0]], [[0.9, 0.8], [0.7, 0.6], [0.5, 1.0]]))
    assert s["steps"] == [10, 20, 30] and s["layers"] == [1, 2]
    assert s["l2"] == [[1.0, 3.0, 5.0], [2.0, 4.0, 0.0]] and s["cos"][1] == [0.8, 0.6, 1.0]
    assert s["median_l2"] == [3.0, 2.0] and s["median_cos"] == [0.7, 0.8]
    assert s["median_l2_all"] == 2.5 and s["median_cos_all"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no 'ics' recorder curve"):
        RW.ics_summary(_run())
    bad = _ics_run([[1.0, 2.0]], [[0.9, 0.8]])
    bad["curves"]["step"].append(20)
    with pytest.raises(ValueError, match="1 entries for 2 records"):
        RW.ics_summary(bad)
    with pytest.raises(TypeError, match="one run of an experiment result"):
        RW.ics_summary({"runs": {}})


def _land_run(recs, norm=None, loss0=1.0):
    full = [{"loss0": loss0, "loss": lo, "loss_range": None, "grad_change": gc, "beta": b} for lo, gc, b in recs]
    return _run(norm, [0] + [10 * (i + 1) for i in range(len(full))], curves={"landscape": full})


def test_landscape_summary_skips_non_finite_losses():
    s = RW.landscape_summary(_land_run([([1.0, 0.5, 2.0], [0.1, 0.3, 0.2], 4.0),
                                       ([1.0, math.inf, 0.9], [0.2, 0.2, 0.5], 1.0),
                                       ([0.3, 0.3, 0.4], [0.05, 0.1, 0.1], 2.0)]))
    assert s["loss_min"] == [0.5, 0.9, 0.3] and s["loss_max"] == [2.0, 1.0, 0.4]
    assert s["loss_range"] == pytest.approx([1.5, 0.1, 0.1])
    assert s["gc_min"] == [0.1, 0.2, 0.05] and s["gc_max"] == [0.3, 0.5, 0.1]
    assert s["median_loss_range"] == pytest.approx(0.1) and s["median_gc_max"] == 0.3 and s["median_beta"] == 2.0
    half = RW.landscape_summary(_land_run([([1.0, 0.5, 2.0], [0.1], 4.0), ([0.3, 0.4], [0.1], 2.0)], loss0=0.5))
    assert half["median_loss0"] == 0.5 and half["median_rel_range"] == pytest.approx((3.0 + 0.2) / 2)


def test_early_and_late_training_loss():
    run = _run(None, [0, 10, 20, 30, 40, 50], curves={"train_loss": [None, 2.0, 1.0, 0.6, 0.4, 0.2]})
    assert RW.early_train_loss(run) == 2.0
    assert RW.late_train_loss(run, 0.2) == pytest.approx(0.2)  # steps > 40
    assert RW.late_train_loss(run, 0.5) == pytest.approx((0.6 + 0.4 + 0.2) / 3)  # steps > 25
    run["summary"]["diverged_at"] = 45
    assert RW.late_train_loss(run) is None
    with pytest.raises(ValueError, match="fraction must lie in"):
        RW.late_train_loss(run, 0.0)


# --------------------------------------------------------------------------- checks against torch autograd
def test_scale_invariance_check_against_autograd():
    seed, scales, eps = 3, (0.01, 0.1, 10.0, 100.0), 1e-5
    out = ID.scale_invariance_check(seed=seed, scales=scales, eps=eps)
    assert out["max_out_diff"] < 1e-12 and out["max_grad_rel"] < 1e-12  # eps = 0: exact up to rounding
    # the same quantities with eps > 0, computed independently with torch autograd
    rng = np.random.default_rng(seed)
    u = torch.from_numpy(rng.normal(size=(32, 20)))
    w = torch.from_numpy(rng.normal(size=(8, 20)) / np.sqrt(20))
    gamma, beta = torch.from_numpy(rng.normal(size=8)), torch.from_numpy(rng.normal(size=8))
    dy = torch.from_numpy(rng.normal(size=(32, 8)))

    def out_and_grad(weights):
        weights = weights.clone().requires_grad_(True)
        y = torch.nn.functional.batch_norm(u @ weights.T, None, None, gamma, beta, training=True, eps=eps)
        (y * dy).sum().backward()
        return y.detach(), weights.grad

    y0, g0 = out_and_grad(w)
    d_out = d_grad = 0.0
    for a in scales:
        y, g = out_and_grad(a * w)
        d_out = max(d_out, float((y - y0).abs().max()))
        d_grad = max(d_grad, float((a * g - g0).abs().max() / g0.abs().max()))
    assert out["max_out_diff_eps"] == pytest.approx(d_out, rel=1e-6)
    assert out["max_grad_rel_eps"] == pytest.approx(d_grad, rel=1e-6)
    assert d_out > 1e-3  # with eps > 0 the invariance is visibly approximate at a = 0.01


def test_gradient_projection_against_autograd():
    out = ID.gradient_projection_check(seed=1, m=40, c=4)
    assert out["max_rel"] < 1e-12 and all(0 < s <= 1 for s in out["shrink"])
    # the formula itself, with torch autograd through BN written out (eps = 0, which torch's batch_norm refuses)
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(40, 4, dtype=torch.float64, generator=gen) * 3 + 1).requires_grad_(True)
    gamma = torch.tensor([0.5, 1.0, 1.5, 2.0], dtype=torch.float64)
    g = torch.randn(40, 4, dtype=torch.float64, generator=gen) + 0.7
    y = gamma * (x - x.mean(0)) / x.var(0, unbiased=False).sqrt()
    (y * g).sum().backward()
    var = x.detach().var(0, unbiased=False)
    xhat = (x.detach() - x.detach().mean(0)) / var.sqrt()
    formula = gamma**2 / var * ((g * g).sum(0) - g.sum(0) ** 2 / 40 - (g * xhat).sum(0) ** 2 / 40)
    torch.testing.assert_close((x.grad**2).sum(0), formula, rtol=1e-10, atol=0)


def test_identity_check():
    out = ID.identity_check(seed=5)
    assert out["train_rel"] < 1e-12 and out["inference_rel"] < 1e-12


# --------------------------------------------------------------------------- seeds: paired intervals and readings
E = (0.0, 1.0, -1.0, 2.0, -2.0)  # per-seed offsets: mean 0, sample sd sqrt(2.5)


def _t_interval(d):
    """The two-sided 95% t interval of the mean of ``d``, written out (the reference for evidence.paired)."""
    d = np.asarray(d, dtype=float)
    hw = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return d.mean(), d.mean() - hw, d.mean() + hw


@pytest.mark.parametrize(("shift", "spread", "want"), [(0.5, 0.01, RW.HIGHER), (-0.5, 0.01, RW.LOWER),
                                                       (0.001, 0.001, RW.HIGHER), (0.0, 0.001, RW.LEVEL),
                                                       (0.0, 0.01, RW.INCONCLUSIVE)])
def test_compare_reads_the_t_interval_against_margin_and_band(shift, spread, want):
    b = [0.9 + 0.01 * e for e in E]
    a = [x + shift + spread * e for x, e in zip(b, (1, -1, 0.5, 0, -0.5), strict=True)]
    c = RW.compare(a, b, "acc")  # higher or lower: the interval excludes 0; level: inside +-0.002
    mean, lo, hi = _t_interval(np.subtract(a, b))
    assert (c.p.mean, c.p.lo, c.p.hi) == pytest.approx((mean, lo, hi)) and c.reading == want
    shown = [float(x) for x in re.findall(r"[-+]?\d+\.\d+", c.shown)]  # read back, not formatted the same way
    assert shown == pytest.approx([100 * mean, 100 * lo, 100 * hi], abs=0.0051)
    assert re.fullmatch(r"\S+ points \[\S+, \S+\], 5 seeds", c.shown) and c.cell == c.shown.removesuffix(", 5 seeds")


def test_compare_needs_five_seeds_and_a_known_measure():
    assert RW.compare([0.9, 0.95], [0.5, 0.51], "acc").reading == RW.INCONCLUSIVE  # far apart, but 2 seeds
    one = RW.compare([0.9], [0.5], "acc")
    assert one.reading == RW.INCONCLUSIVE and one.shown == "+40.00 points (one seed: no interval)"
    with pytest.raises(ValueError, match="unknown measure 'speed'"):
        RW.compare([1.0], [1.0], "speed")


def test_ratio_measures_compare_paired_log_ratios_with_the_ledgers_factor():
    from bnlib.reports import rules as R

    b = [1.0, 2.0, 4.0, 0.5, 1.5]
    a = [0.5 * x * math.exp(0.02 * e) for x, e in zip(b, E, strict=True)]  # half, up to a little noise
    c = RW.compare(a, b, "beta")
    mean, lo, hi = _t_interval(np.log(a) - np.log(b))
    assert (c.p.mean, c.p.lo, c.p.hi) == pytest.approx((mean, lo, hi)) and c.reading == RW.LOWER
    assert c.shown == f"{math.exp(mean):.3g}× [{math.exp(lo):.3g}, {math.exp(hi):.3g}], 5 seeds"
    assert RW.MARGINS["beta"] == R.SMOOTHS.margins["ratio"] and RW.MARGINS["cos"] == R.REDUCES_ICS.margins["cos"]
    assert RW.margin_text("beta") == f"a factor of {R.SMOOTHS.margins['ratio']:g}"
    assert RW.margin_text("acc") == "0 points" and RW.margin_text("acc", RW.BANDS) == "0.2 points"
    near = [x * 1.01 ** e for x, e in zip(b, (1, -1, 1, -1, 0), strict=True)]  # within a factor 1.1 both ways
    assert RW.compare(near, b, "gc").reading == RW.LEVEL


def test_mean_hw_is_the_t_interval_of_the_seed_mean():
    v = [0.97 + 0.001 * e for e in E]
    mean, lo, hi = _t_interval(v)
    assert RW.mean_hw(v, "acc", "%") == f"{100 * mean:.2f} ± {100 * (hi - mean):.2f}%"
    assert RW.mean_hw([0.5], "shift") == "0.50"


# --------------------------------------------------------------------------- seeded hand-made experiments
def _seeded(make, seeds=range(5)):
    return seeded(make, seeds)


NOISE = {"none": None, "bn": "torch", "noisy": "noisy"}


def _noisy_experiment(seeds=range(5), acc_noisy=0.966, early_noisy=0.4):
    """why_noisy on one hidden layer (probed unit 1), records at steps 0, 10, 20, 30. Per seed s (offset e = E[s]):
    first-interval loss none 1 + 0.01 e, BN 0.4 + 0.01 e, noisy ``early_noisy`` + 0.01 e; late loss (step 30)
    none 0.1, BN 0.2 + 0.001 e, noisy 0.3 + 0.002 e; test accuracy with population statistics none 0.96, BN
    0.97 + 0.001 e, noisy ``acc_noisy`` + 0.001 e; noisy BN in eval mode 0.95 + 0.002 e; with batch statistics
    noisy BN 0.966 + 0.001 e and BN the same up to +-0.0005."""

    def make(s):
        e, out = E[s], {}
        spec = {"none": ([5.0, 0.0, 0.5, 0.25], 1.0 + 0.01 * e, 0.1, 0.96, 0.96, None),
                "bn": ([0.0] * 4, 0.4 + 0.01 * e, 0.2 + 0.001 * e, 0.97 + 0.001 * e, 0.969 + 0.001 * e,
                       0.966 + 0.001 * e + 0.0005 * (1, -1, 1, -1, 0)[s]),
                "noisy": ([0.0] * 4, early_noisy + 0.01 * e, 0.3 + 0.002 * e, acc_noisy + 0.001 * e,
                          0.95 + 0.002 * e, 0.966 + 0.001 * e)}
        for k, (medians, early, late, pop, ev, batch) in spec.items():
            run = _pct_run(NOISE[k], medians)
            run["config"] |= {"steps": 30, "record_every": 10}
            jump = 0.1 * (k == "noisy")  # eval mode jumps between records for noisy BN
            run["curves"] |= {"train_loss": [None, early, 0.5, late], "test_acc": [0.1, 0.9, 0.95 - jump, ev],
                              "test_acc_pop": [0.1, 0.9, 0.95, pop], "test_acc_batchstats": [0.1, 0.9, 0.95, 0.96]}
            run["summary"] |= {"final_test_acc": ev, "final_test_acc_pop": pop, "final_test_acc_batchstats": batch}
            out[k] = run
        return out

    # noisy BN's draws of seed s shift the records of steps 10, 20, 30 by 0, 2 + 0.1 e, 1
    draws = {s: _draws(shift_at={10: 0.0, 20: 2.0 + 0.1 * E[s], 30: 1.0}) for s in seeds}
    return _seeded(make, seeds), draws


def _glued(out: dict) -> dict:
    return {k: v.value for k, v in out.items()}


def test_why_shift_and_as_trained_take_draws_by_seed():
    res, draws = _noisy_experiment()
    out = RW.why_shift(res, draws)  # every seed's runs, each shifted by its own seed's draws
    for s in range(5):
        assert out[f"noisy-seed{s}"]["relative"] == pytest.approx((2.0 + 0.1 * E[s]) / 2)
        assert out[f"none-seed{s}"]["relative"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="the draws hold seeds \\[0, 1\\], not the run's seed 3"):
        RW.as_trained(res["runs"]["noisy-seed3"], {s: draws[s] for s in (0, 1)})


def test_noisy_numbers_over_seeds():
    res, draws = _noisy_experiment()
    v = _glued(RW.noisy_numbers(res, draws, tail=3))
    shift_noisy = [(2.0 + 0.1 * e) / 2 for e in E]
    mean, lo, hi = _t_interval(np.subtract(shift_noisy, 0.25))
    assert v["why_d_shift"] == f"{mean:+.2f} spreads [{lo:+.2f}, {hi:+.2f}], 5 seeds" and v["why_r_shift"] == RW.HIGHER
    assert v["why_shift_ratio"] == pytest.approx(4.0) and v["why_shift_none"] == "0.25"
    # noisy BN minus BN in the first interval: exactly 0 at every seed: level
    assert v["why_r_early_noisy_bn"] == RW.LEVEL and v["why_d_early_noisy_bn"] == "0.000 [0.000, 0.000], 5 seeds"
    assert v["why_early_text"].startswith("*At the start*, noisy BN is as fast as BN: over the first 10 steps")
    assert v["why_early_text"].endswith("The injected shift costs nothing there.")
    assert v["why_r_early_bn_none"] == RW.LOWER
    # accuracy with population statistics: BN 0.97 + 0.001 e vs none 0.96: +1 point; noisy 0.966 vs BN: -0.4 points
    mean, lo, hi = _t_interval([0.001 * e + 0.01 for e in E])
    assert v["why_d_acc_bn_none"] == f"{100 * mean:+.2f} points [{100 * lo:+.2f}, {100 * hi:+.2f}], 5 seeds"
    assert v["why_r_acc_noisy_bn"] == RW.LOWER
    assert "Noisy BN ends at 96.60 ± " in v["why_acc_text"] and ", below BN (" in v["why_acc_text"]
    # eval mode: noisy 0.95 + 0.002 e vs its own 0.966 + 0.001 e: lower, an artefact of the running averages
    assert v["why_r_eval_noisy"] == RW.LOWER and "an artefact of evaluation" in v["why_eval_text"]
    assert v["why_r_batch"] == RW.LEVEL
    assert v["why_level"].startswith("With batch statistics on both, noisy BN (96.60 ± 0.20%) is level with BN")
    # late: none 0.1 lowest, then BN, then noisy, both beyond the margin: the ordering turned around
    assert v["why_late_text"].startswith("*Later*, over the last fifth of training (steps after 24), the network "
                                         "without BN has the lowest mean training loss, 0.1000")
    assert "The ordering of the start has turned around" in v["why_late_text"]
    assert v["why_r_late_bn"] == v["why_r_late_noisy"] == RW.HIGHER
    assert v["why_unit"] == 1 and v["why_last_layer"] == 1 and v["why_tail"] == 3
    assert "ends below BN on the test set" in v["why_noisy_overview"]
    assert "; eval mode (running averages collected under the noise) minus that: " in v["why_noisy_overview"]


def test_noisy_numbers_check_the_exercise_on_eval_mode_jumps():
    res, draws = _noisy_experiment()
    for s in range(5):  # noisy BN's eval-mode curve now as smooth as with population statistics
        run = res["runs"][f"noisy-seed{s}"]
        run["curves"]["test_acc"] = list(run["curves"]["test_acc_pop"])
    with pytest.raises(ValueError, match="eval-mode accuracy jumps between records"):
        RW.noisy_numbers(res, draws, tail=3)


def test_noisy_numbers_follow_the_data_when_noisy_bn_keeps_up():
    res, draws = _noisy_experiment(acc_noisy=0.97, early_noisy=0.2)
    v = _glued(RW.noisy_numbers(res, draws, tail=3))
    assert v["why_r_acc_noisy_bn"] == RW.LEVEL and "level with BN" in v["why_acc_text"]
    assert v["why_early_text"].startswith("*At the start*, noisy BN is faster than BN")


def test_noisy_numbers_on_one_seed_keep_their_keys():
    res, draws = _noisy_experiment(seeds=[0])
    five, one = RW.noisy_numbers(*_noisy_experiment(), tail=3), RW.noisy_numbers(res, draws, tail=3)
    assert set(one) == set(five) and one["why_r_shift"].value == RW.INCONCLUSIVE
    assert one["why_d_shift"].value == "+0.75 spreads (one seed: no interval)"


def test_shift_table_per_layer():
    res, draws = _noisy_experiment()
    cells = RW.shift_table(res, draws).cells()
    assert [r[:2] for r in cells] == [["none", "1"], ["BN", "1"], ["noisy BN", "1"]]
    mean, lo, hi = _t_interval([(2.0 + 0.1 * e) / 2 - 0.25 for e in E])
    assert cells[2][3] == f"{mean:+.2f} spreads [{lo:+.2f}, {hi:+.2f}]" and cells[0][3] == ""
    assert cells[0][2] == "0.25" and cells[1][4] == "1.00"


def test_training_bands_and_figure():
    res, _ = _noisy_experiment()
    b = RW.training_bands(res)
    mean, lo, hi = _t_interval(np.log([1.0 + 0.01 * e for e in E]))  # the geometric mean and its interval
    assert b["none"]["loss_step"] == [10, 20, 30]
    assert (b["none"]["train_loss"]["mean"][0], b["none"]["train_loss"]["lo"][0],
            b["none"]["train_loss"]["hi"][0]) == pytest.approx((math.exp(mean), math.exp(lo), math.exp(hi)))
    assert b["none"]["test_err_eval"] is None
    noisy_eval = [100 * (0.05 - 0.002 * e) for e in E]
    assert b["noisy"]["test_err_eval"]["mean"][-1] == pytest.approx(math.exp(np.mean(np.log(noisy_eval))))
    assert b["bn"]["test_err"]["mean"][-1] == pytest.approx(math.exp(np.mean(np.log([100 * (0.03 - 0.001 * e)
                                                                                     for e in E]))))
    fig = PW.figure_why_training(b)
    a, e = fig.axes[:2]
    np.testing.assert_allclose(a.lines[0].get_ydata(), b["none"]["train_loss"]["mean"])
    assert len(e.lines) == 5  # population statistics for all three, eval mode for BN and noisy BN
    plt.close(fig)


def _ics_experiment(cos_gain=0.05, l2_factor=0.5):
    """why_landscape's ICS records: two checkpoints, two measured layers; per seed the no-BN l2 distances are
    (1, 2) and (3, 4) times 1 + 0.05 e, BN's ``l2_factor`` times those; cosines 0.9 - 0.01 e, BN ``cos_gain`` more."""

    def make(s):
        f = 1 + 0.05 * E[s]
        l2 = [[1.0 * f, 2.0 * f], [3.0 * f, 4.0 * f]]
        cos = [[0.9 - 0.01 * E[s]] * 2, [0.8 - 0.01 * E[s]] * 2]
        return {"none": _ics_run(l2, cos), "bn": _ics_run([[l2_factor * x for x in r] for r in l2],
                                                          [[x + cos_gain for x in r] for r in cos], norm="torch")}

    return _seeded(make)


def test_ics_numbers_table_and_bands():
    land = _ics_experiment()
    v = _glued(RW.ics_numbers(land))
    assert v["why_r_l2"] == RW.LOWER and v["why_r_cos"] == RW.HIGHER
    assert v["why_d_l2"] == "0.5× [0.5, 0.5], 5 seeds" and v["why_d_cos"] == "+0.0500 [+0.0500, +0.0500], 5 seeds"
    assert v["why_ics_concl"].startswith("in this network BN does reduce internal covariate shift")
    assert v["why_ics_text"].endswith("So " + v["why_ics_concl"])
    assert (v["why_ics_first"], v["why_ics_last"], v["why_ics_n"], v["why_n_layers"]) == (2, 3, 2, 2)
    assert v["why_cos_higher"] == 2 and v["why_l2_lower"] == 2
    none_l2 = [2.5 * (1 + 0.05 * e) for e in E]  # median of (1, 2, 3, 4) times f
    mean, lo, hi = _t_interval(none_l2)
    assert v["why_l2_none"] == f"{mean:.4f} ± {hi - mean:.4f}"
    cells = RW.ics_table(land).cells()
    assert cells[0][0] == "2" and cells[0][3] == "0.5× [0.5, 0.5]" and cells[1][6] == "+0.0500 [+0.0500, +0.0500]"
    small = _glued(RW.ics_numbers(_ics_experiment(cos_gain=0.01, l2_factor=0.95)))  # inside both margins
    assert small["why_r_l2"] == small["why_r_cos"] == RW.LEVEL and "do not both clear" in small["why_ics_concl"]
    bands = RW.ics_bands(land)
    geo = math.exp(np.mean(np.log([1 + 0.05 * e for e in E])))  # the geometric mean of the factors
    assert bands["bn"]["steps"] == [10, 20] and bands["bn"]["l2"][1]["mean"] == pytest.approx([geo, 2 * geo])
    hw = stats.t.ppf(0.975, 4) * 0.01 * math.sqrt(2.5) / math.sqrt(5)  # of the cosines 0.95 - 0.01 e, 0.85 - 0.01 e
    assert bands["bn"]["cos"][0]["hi"] == pytest.approx([0.95 + hw, 0.85 + hw])
    assert RW.ics_bands(_ics_experiment(cos_gain=0.099))["bn"]["cos"][0]["hi"][0] == 1.0  # 0.999 + hw, clipped
    fig = PW.figure_why_ics(bands)
    assert len(fig.axes) == 4
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), [2 * geo, 4 * geo])  # l2, second layer, no BN
    plt.close(fig)


def _land_experiment(bn_range=0.6, bn_loss0=0.5):
    """Landscape records, one checkpoint: no BN loss range 0.5, gradient change 0.4, beta 2 (times 1 + 0.05 e);
    BN gradient change 0.2, beta 1, loss range ``bn_range`` (same factor) and loss at w ``bn_loss0``."""

    def make(s):
        f = 1 + 0.05 * E[s]
        return {"none": _land_run([([1.0, 1.0 - 0.5 * f], [0.1, 0.4 * f], 2.0 * f)], loss0=1.0),
                "bn": _land_run([([1.0, 1.0 - bn_range * f], [0.1, 0.2 * f], 1.0 * f)], norm="torch", loss0=bn_loss0)}

    return _seeded(make)


def test_landscape_numbers_and_figure():
    v = _glued(RW.landscape_numbers(_land_experiment()))
    assert v["why_r_beta"] == v["why_r_gc"] == RW.LOWER and v["why_r_range"] == RW.HIGHER  # 0.6 / 0.5 = 1.2 > 1.1
    assert v["why_grad_text"].endswith("as Santurkar et al. found.")
    assert "its largest change, BN over no BN: 0.5× [0.5, 0.5], 5 seeds" in v["why_grad_text"]
    assert v["why_loss_text"].startswith("The range of the loss along the gradient is larger with BN")
    assert "the loss level" not in v["why_loss_text"]  # BN's loss at w is lower, the range larger: no such excuse
    assert "while the loss itself varies more" in v["why_landscape_overview"]
    higher = _glued(RW.landscape_numbers(_land_experiment(bn_loss0=2.0)))
    assert "Part of that is the loss level" in higher["why_loss_text"]
    flat = _glued(RW.landscape_numbers(_land_experiment(bn_range=0.3)))
    assert flat["why_r_range"] == RW.LOWER and "and the loss itself varies less" in flat["why_landscape_overview"]
    bands = RW.landscape_bands(_land_experiment())
    fig = PW.figure_why_landscape(bands)
    geo = math.exp(np.mean(np.log([1 + 0.05 * e for e in E])))  # lines: geometric means over the seeds
    np.testing.assert_allclose(fig.axes[2].lines[0].get_ydata(), [2.0 * geo])
    np.testing.assert_allclose(fig.axes[1].lines[1].get_ydata(), [0.2 * geo])
    plt.close(fig)


def _lp_run(norm, loss, gc, beta, cos, medians, acc):
    run = _pct_run(norm, medians)
    run["curves"] |= {"landscape": [{"loss0": 1.0, "loss": loss, "grad_change": [0.05, gc], "beta": beta}] * 3,
                      "ics": [{"l2": [None, 1.0], "cos": [None, cos]}] * 3}
    run["summary"] |= {"final_test_acc": acc - 0.01 if norm == "torch" else acc, "final_test_acc_pop": acc}
    return run


def _lp_experiment():
    def make(s):
        f, e = 1 + 0.05 * E[s], 0.001 * E[s]
        return {"none": _lp_run(None, [1.0, 0.5], 0.4 * f, 2.0 * f, 0.90, [5.0, 0.0, 0.5, 0.25], 0.95 + e),
                "bn": _lp_run("torch", [1.0, 0.8], 0.2 * f, 1.0 * f, 0.95, [0.0] * 4, 0.97 + e),
                "l1": _lp_run("l1", [1.0, 0.8], 0.2 * f, 1.0 * f, 0.96, [0.0, 0.0, 0.2, 0.0], 0.97 + e),
                "linf": _lp_run("linf", [1.0, 0.2], 0.5 * f, 3.0 * f, 0.80, [0.0, 0.0, 2.0, 0.0], 0.90 + e)}

    return _seeded(make)


def test_lp_numbers_and_table():
    lp = RW.lp_summary(_lp_experiment())
    assert lp["bn"]["acc"] == pytest.approx([0.97 + 0.001 * e for e in E])  # population statistics, not eval mode
    assert lp["l1"]["shift"] == pytest.approx([0.1] * 5) and lp["none"]["range"] == pytest.approx([0.5] * 5)
    row = {"verdict": "mixed", "measured": "the ledger's sentence"}
    v = _glued(RW.lp_numbers(lp, row))
    assert v["why_v_lp"] == "mixed" and v["why_lp_measured"] == "the ledger's sentence"
    # smoother than none (0.5, 0.4, 2): BN and l_1 on all three (0.2, 0.2, 1 -> loss range 0.2 < 0.5 / 1.1)
    assert "BN on 3 (rougher on 0" in v["why_lp_smooth_text"] and "l_inf on 0 (rougher on 3" in v["why_lp_smooth_text"]
    assert v["why_r_lp_range_linf"] == v["why_r_lp_beta_linf"] == RW.HIGHER and v["why_r_lp_gc_l1"] == RW.LOWER
    assert "l_1 minus BN 0.00 points [0.00, 0.00], 5 seeds (level within ±0.2 points)" in v["why_lp_acc_text"]
    assert "l_inf +0.75 spreads [+0.75, +0.75], 5 seeds (higher)" in v["why_lp_shift_text"]
    cells = RW.lp_table(lp).cells()
    assert [r[0] for r in cells] == ["none", "BN", "l_1 norm", "l_inf norm", "BN vs none", "l_1 norm vs none",
                                     "l_inf norm vs none"]
    assert cells[1][1] == RW.mean_hw(lp["bn"]["acc"], "acc") and cells[6][2] == "1.5× [1.5, 1.5]"


def test_setup_numbers():
    def make(s):
        bn = _run("torch", sizes=[784, 7, 7, 7, 10], probe_units=[0, 1, 2], lr=0.5, record_every=300,
                  optimizer="sgd", momentum=0.0, batch_size=60, init_sigma=0.1, recorders=[])
        bn["config"]["steps"] = 900
        return {"bn": bn}

    noisy = _seeded(make, (0, 1, 2))
    land = _seeded(lambda s: {"bn": {**make(s)["bn"], "config": {**make(s)["bn"]["config"],
                                                                  "recorders": ["ics", "landscape"]}}}, (0, 1, 2))
    out = RW.setup_numbers(noisy, land, shift_std=0.5, scale_spread=1.0, landscape_steps=(0.1, 0.4, 2.0),
                           n_test=10000, momentum=0.1)
    v = _glued(out)
    assert {k: v[k] for k in ("why_steps", "why_every", "why_lr", "why_depth", "why_width", "why_eta_lo", "why_eta_hi",
                              "why_seeds", "why_seed_first", "why_seed_last")} == {
        "why_steps": 900, "why_every": 300, "why_lr": 0.5, "why_depth": 3, "why_width": 7, "why_eta_lo": 0.05,
        "why_eta_hi": 1.0, "why_seeds": 3, "why_seed_first": 0, "why_seed_last": 2}
    assert v["why_half_life"] == pytest.approx(math.log(2) / math.log(1 / 0.9)) and v["why_band_acc"] == "0.2 points"
    assert v["why_margin_acc"] == "0 points" and v["why_margin_beta"] == "a factor of 1.1"
    fewer = {"runs": {k: r for k, r in land["runs"].items() if not k.endswith("seed2")}}
    with pytest.raises(ValueError, match="same learning rate, steps and seeds"):
        RW.setup_numbers(noisy, fewer, shift_std=0.5, scale_spread=1.0, landscape_steps=(0.1,), n_test=1, momentum=0.1)


def test_figure_why_shift_draws_one_unit():
    runs = {"none": _pct_run(None, [0.0, 0.5, 1.0, 1.5]), "noisy": RW.as_trained(_pct_run("noisy", [0.0] * 4),
                                                                                  _draws(shift_at={10: 2.0}))}
    fig = PW.figure_why_shift(runs, layer=-1, unit=1)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), [0.0, 2.0, 0.0, 0.0])
    plt.close(fig)


# --------------------------------------------------------------------------- the verdict section
def _rows(verdicts=("supported", "mixed", "inconclusive", "not supported")):
    keys = ("reduces_ics", "ics_is_why", "smooths", "bjorck")
    return {k: {"measured": f"m {k}", "verdict": v} for k, v in zip(keys, verdicts, strict=True)}


def test_verdict_numbers():
    out = RW.verdict_numbers(_rows())
    assert list(out) == ["why_v_reduces_ics", "why_v_ics_is_why", "why_v_smooths", "why_v_bjorck", "why_side_by_side"]
    assert out["why_v_ics_is_why"].value == "mixed" and out["why_side_by_side"].kind == "md"
    lines = out["why_side_by_side"].value.splitlines()
    assert len(lines) == 6
    assert lines[4] == ("| Is the loss landscape along the gradient smoother with BN? | not addressed | yes "
                        "| m smooths | **inconclusive** |")


def test_closing_follows_the_readings_and_the_verdicts():
    res, draws = _noisy_experiment(acc_noisy=0.97)
    glued = (RW.noisy_numbers(res, draws, tail=3) | RW.ics_numbers(_ics_experiment())
             | RW.landscape_numbers(_land_experiment()) | {"why_seeds": RW.number(5)})
    text = RW.closing_numbers(glued, _rows())["why_closing"].value
    assert ("Against the internal-covariate-shift account: noisy BN, with more distribution shift than the network "
            "without BN, starts training as fast as BN") in text
    assert "scored with population statistics, noisy BN ends level with BN on the test set." in text
    assert ("For it: the ℓ₂ distance of Santurkar et al.'s measure is smaller with BN; by the gradient-based "
            "measure, BN makes each layer's gradient turn less") in text
    assert "the loss along the gradient varies more in absolute terms." in text
    assert ("BN reduces ICS **supported**, ICS is why BN helps **mixed**, BN smooths **inconclusive**, its benefit "
            "comes mainly from larger learning rates (CIFAR-10) **not supported**.") in text
    assert text.endswith("5 seeds per network, and a single learning rate, at which the network without BN in the end "
                         "optimizes *better* than the ones with BN.")
