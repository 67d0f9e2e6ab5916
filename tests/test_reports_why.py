"""The why chapter's measures and the claims ledger's verdicts (bnlib.reports), on tiny hand-made results
whose answers are known, plus the checks that stand on an independent reference (torch autograd, the
documented noise distribution, the training engine itself)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from bnlib import analysis as A  # noqa: E402
from bnlib import identities as ID  # noqa: E402
from bnlib import models  # noqa: E402
from bnlib import train as T  # noqa: E402
from bnlib.plots import why as PW  # noqa: E402
from bnlib.reports import claims as RL  # noqa: E402
from bnlib.reports import why as RW  # noqa: E402


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


# --------------------------------------------------------------------------- the claims, one by one
def _sweep(accs: dict, base=0.1, step=100):
    """{(norm, multiplier): final accuracy or None (diverged)} -> a learning-rate sweep result."""
    runs = {}
    for (norm, k), a in accs.items():
        diverged = 50 if a is None else None
        runs[f"{norm or 'none'}-x{k:g}"] = _acc_run([0.1, 0.1 if a is None else a], final=a, norm=norm,
                                                      diverged_at=diverged, step=step, lr=base * k)
    return {"name": "cifar_lr_sweep", "runs": runs}


def test_claim_higher_lr():
    acc = {(None, 1): 0.50, (None, 2): 0.48, (None, 5): None, ("torch", 1): 0.52, ("torch", 2): 0.52,
           ("torch", 5): 0.50, ("torch", 10): 0.30}
    row = RL.claim_higher_lr(_sweep(acc), 0.1)  # threshold 0.45: k_none = 2, k_bn = 5
    assert row["verdict"] == RL.SUPPORTED and row["numbers"]["k_bn"] == 5 and row["numbers"]["k_none"] == 2
    assert row["numbers"]["threshold"] == pytest.approx(0.45)
    row = RL.claim_higher_lr(_sweep({**acc, ("torch", 5): 0.40}), 0.1)  # k_bn = 2 = k_none
    assert row["verdict"] == RL.NOT_SUPPORTED
    row = RL.claim_higher_lr(_sweep({**acc, (None, 2): 0.40, ("torch", 5): 0.40}), 0.1)  # k_bn = 2 > k_none = 1
    assert row["verdict"] == RL.MIXED
    row = RL.claim_higher_lr(_sweep({**acc, (None, 5): 0.46, (None, 10): 0.2}), 0.1)  # k_bn = 5 = k_none
    assert row["verdict"] == RL.NOT_SUPPORTED
    row = RL.claim_higher_lr(_sweep({**acc, (None, 1): None}), 0.1)
    assert row["verdict"] == RL.MIXED and "diverges at the baseline rate" in row["measured"]
    assert RL.claim_higher_lr(None, 0.1)["verdict"] == RL.NOT_TESTED


def _init_sweep(none, bn):
    """An init sweep over sigma = 0.01, 0.1, 1, 10 with the given final accuracies, without and with BN."""
    runs = {}
    for norm, accs in ((None, none), ("torch", bn)):
        for sigma, a in zip((0.01, 0.1, 1.0, 10.0), accs, strict=True):
            runs[f"{norm}-{sigma}"] = _acc_run([0.1, a], norm=norm, init_sigma=sigma)
    return {"runs": runs}


def test_claim_init():
    sweep = _init_sweep
    row = RL.claim_init(sweep([0.5, 0.97, 0.96, 0.3], [0.975, 0.98, 0.97, 0.90]))  # BN 0.01..1, none 0.1..1
    assert row["verdict"] == RL.SUPPORTED
    assert (row["numbers"]["bn"]["lo"], row["numbers"]["bn"]["hi"]) == (0.01, 1.0)
    assert row["numbers"]["none"]["decades"] == pytest.approx(1.0)
    assert RL.claim_init(sweep([0.97, 0.97, 0.96, 0.3], [0.5, 0.98, 0.97, 0.90]))["verdict"] == RL.NOT_SUPPORTED
    assert RL.claim_init(sweep([0.5, 0.97, 0.96, 0.3], [0.5, 0.98, 0.97, 0.90]))["verdict"] == RL.NOT_SUPPORTED  # equal
    # BN wider (0.1..10, 2 decades) but not containing no-BN's 0.01..0.1 (1 decade): mixed
    assert RL.claim_init(sweep([0.97, 0.97, 0.5, 0.3], [0.5, 0.98, 0.97, 0.97]))["verdict"] == RL.MIXED
    assert RL.claim_init(None)["verdict"] == RL.NOT_TESTED


def _reg(gap_bn, gap_none, test_bn, test_none_dropout):
    def run(norm, p, train, test):
        return _run(norm, (0, 10), summary={"final_train_acc": train, "final_test_acc": test,
                                            "final_train_loss": 0.1, "final_test_loss": 0.2}, dropout=p)

    return {"runs": {"a": run(None, 0.0, 0.99, 0.99 - gap_none), "b": run(None, 0.3, 0.98, test_none_dropout),
                     "c": run("torch", 0.0, test_bn + gap_bn, test_bn), "d": run("torch", 0.3, 0.97, 0.95)}}


def test_claim_regularizer():
    row = RL.claim_regularizer(_reg(0.01, 0.03, 0.97, 0.96))
    assert row["verdict"] == RL.SUPPORTED and row["numbers"]["dropout"] == 0.3
    assert RL.claim_regularizer(_reg(0.04, 0.03, 0.95, 0.96))["verdict"] == RL.NOT_SUPPORTED
    assert RL.claim_regularizer(_reg(0.01, 0.03, 0.95, 0.96))["verdict"] == RL.MIXED
    assert RL.claim_regularizer(_reg(0.04, 0.03, 0.97, 0.96))["verdict"] == RL.MIXED
    assert RL.claim_regularizer(None)["verdict"] == RL.NOT_TESTED


def test_claim_saturating():
    def depth(acc_bn, acc_none, sat_bn, sat_none):
        runs = {}
        for d, (ab, an) in ((3, (0.6, 0.6)), (9, (acc_bn, acc_none))):
            for norm, a, s in (("torch", ab, sat_bn), (None, an, sat_none)):
                run = _acc_run([0.1, a], norm=norm, depth=d)
                run["curves"]["saturated"] = [[0.0, 0.0], [s, s]]
                runs[f"{norm}-depth{d}"] = run
        return {"runs": runs}

    row = RL.claim_saturating(depth(0.55, 0.10, 0.05, 0.60))
    assert row["verdict"] == RL.SUPPORTED and row["numbers"]["depth"] == 9
    assert RL.claim_saturating(depth(0.10, 0.12, 0.05, 0.60))["verdict"] == RL.NOT_SUPPORTED
    assert RL.claim_saturating(depth(0.55, 0.10, 0.70, 0.60))["verdict"] == RL.MIXED
    assert RL.claim_saturating(depth(0.13, 0.10, 0.05, 0.60))["verdict"] == RL.MIXED


def test_claim_reduces_ics():
    def res(l2_bn, cos_bn):
        return {"runs": {"none": _ics_run([[1.0, 1.0]], [[0.9, 0.9]]),
                         "bn": _ics_run([[l2_bn, l2_bn]], [[cos_bn, cos_bn]], norm="torch")}}

    assert RL.claim_reduces_ics(res(0.5, 0.95))["verdict"] == RL.SUPPORTED
    assert RL.claim_reduces_ics(res(2.0, 0.5))["verdict"] == RL.NOT_SUPPORTED
    assert RL.claim_reduces_ics(res(0.5, 0.5))["verdict"] == RL.MIXED
    assert RL.claim_reduces_ics(None)["verdict"] == RL.NOT_TESTED


def _noisy_res(early, acc, noisy_shift=2.0):
    runs = {}
    for k in ("none", "bn", "noisy"):
        norm = {"none": None, "bn": "torch", "noisy": "noisy"}[k]
        run = _pct_run(norm, [0.0, 0.0, 0.5, 0.0] if k == "none" else [0.0, 0.0, 0.0, 0.0])
        run["curves"]["train_loss"] = [None, early[k], 0.1, 0.1]
        run["summary"]["final_test_acc"] = acc[k]
        runs[k] = run
    return {"runs": runs}, _draws(shift_at={20: noisy_shift})


def test_claim_ics_is_why():
    early = {"none": 1.0, "bn": 0.5, "noisy": 0.6}  # noisy keeps 80% of the early advantage
    acc = {"none": 0.96, "bn": 0.98, "noisy": 0.975}  # and 75% of the accuracy advantage
    row = RL.claim_ics_is_why(*_noisy_res(early, acc))
    assert row["verdict"] == RL.NOT_SUPPORTED
    assert row["numbers"]["kept"] == pytest.approx({"early speed": 0.8, "test accuracy": 0.75})
    assert row["numbers"]["shift"] == pytest.approx({"none": 0.25, "noisy": 1.0})
    row = RL.claim_ics_is_why(*_noisy_res(early, {**acc, "noisy": 0.961}))  # keeps speed, loses accuracy
    assert row["verdict"] == RL.MIXED
    row = RL.claim_ics_is_why(*_noisy_res({**early, "noisy": 0.95}, {**acc, "noisy": 0.961}))
    assert row["verdict"] == RL.SUPPORTED
    # only the benefits BN has count: here BN is not more accurate, so only the early speed is tested
    row = RL.claim_ics_is_why(*_noisy_res({**early, "noisy": 0.95}, {**acc, "bn": 0.95}))
    assert row["verdict"] == RL.SUPPORTED and list(row["numbers"]["kept"]) == ["early speed"]
    # no extra shift injected: the experiment does not test anything
    row = RL.claim_ics_is_why(*_noisy_res(early, acc, noisy_shift=0.4))
    assert row["verdict"] == RL.MIXED
    assert RL.claim_ics_is_why(None)["verdict"] == RL.NOT_TESTED


def test_claim_accelerates():
    fig1 = {"runs": {"none": _acc_run([0.1, 0.5, 0.8, 0.9, 0.9]), "bn": _acc_run([0.1, 0.9, 0.95, 0.96, 0.97])}}
    # none first reaches its final 0.9 at step 300, BN at 100: 3x
    recipe = {"runs": {"none-baseline": _acc_run([0.1, 0.3, 0.5, 0.6]),  # best 0.6 at 300
                       "bn-baseline": _acc_run([0.1, 0.4, 0.6, 0.65], norm="torch"),  # 200: 1.5x
                       "+lr x5": _acc_run([0.1, 0.6, 0.7, 0.7], norm="torch", lr=0.5)}}  # 100: 3x
    row = RL.claim_accelerates(fig1, recipe)
    assert row["verdict"] == RL.MIXED
    assert row["numbers"]["speedups"] == pytest.approx({"MNIST, BN": 3.0, "CIFAR-10, BN": 1.5,
                                                        "CIFAR-10, recipe": 3.0})
    assert RL.claim_accelerates(fig1, None)["verdict"] == RL.SUPPORTED
    slow = {"runs": {"none": fig1["runs"]["none"], "bn": _acc_run([0.1, 0.2, 0.3, 0.5, 0.9])}}
    assert RL.claim_accelerates(slow, None)["verdict"] == RL.NOT_SUPPORTED
    assert RL.claim_accelerates(None, None)["verdict"] == RL.NOT_TESTED


def test_claims_from_checks():
    ok = {"max_out_diff": 1e-15, "max_grad_rel": 1e-15, "max_out_diff_eps": 0.05, "max_grad_rel_eps": 0.04,
          "eps": 1e-5}
    assert RL.claim_scale_invariance(ok)["verdict"] == RL.SUPPORTED
    assert RL.claim_scale_invariance({**ok, "max_grad_rel": 1e-3})["verdict"] == RL.NOT_SUPPORTED
    assert RL.claim_identity({"train_rel": 1e-16, "inference_rel": 0.0})["verdict"] == RL.SUPPORTED
    assert RL.claim_identity({"train_rel": 1e-16, "inference_rel": 1e-6})["verdict"] == RL.NOT_SUPPORTED


def test_claim_small_batches():
    def res(bn, layer):
        runs = {}
        for norm, accs in (("torch", bn), ("layer", layer), ("group", layer)):
            for b, a in zip((2, 16, 128), accs, strict=True):
                runs[f"{norm}-b{b}"] = _run(norm, (0, 10), summary={"final_test_acc": a,
                                                                  "final_test_acc_batchstats": a},
                                            batch_size=b, lr=0.5 * b / 60)
        return {"runs": runs}

    row = RL.claim_small_batches(res([0.90, 0.97, 0.97], [0.95, 0.96, 0.96]))
    assert row["verdict"] == RL.SUPPORTED and row["numbers"]["batch"] == 2
    assert RL.claim_small_batches(res([0.965, 0.97, 0.97], [0.95, 0.96, 0.96]))["verdict"] == RL.NOT_SUPPORTED
    assert RL.claim_small_batches(res([0.94, 0.97, 0.97], [0.93, 0.96, 0.96]))["verdict"] == RL.MIXED


def test_claim_folding():
    def res(same, diff):
        return {"runs": {"bn": _run("torch", analysis={"fold": {"max_abs_diff": diff, "same_predictions": same,
                                                                "speedup": 1.3}})}}

    assert RL.claim_folding(res(1.0, 2e-6))["verdict"] == RL.SUPPORTED
    assert RL.claim_folding(res(0.99, 2e-6))["verdict"] == RL.NOT_SUPPORTED
    assert RL.claim_folding(res(1.0, 1e-3))["verdict"] == RL.NOT_SUPPORTED
    assert RL.claim_folding(None)["verdict"] == RL.NOT_TESTED


def _timed(norm, seconds, steps=100, **cfg):
    return _run(norm, (0, steps), summary={"train_seconds": seconds, "steps_done": steps}, **cfg)


def test_step_overhead_pairs_runs_that_differ_only_in_bn():
    a = {"name": "a", "runs": {"none": _timed(None, 10.0), "bn": _timed("torch", 13.0),
                               "noisy": _timed("noisy", 30.0),  # not a BN: ignored
                               "bn-other-lr": _timed("torch", 50.0, lr=0.5),  # no partner without BN
                               "bn-half": _timed("torch", 6.0, steps=50, seed=1), "none-half": _timed(None, 8.0,
                                                                                                      seed=1)}}
    b = {"name": "b", "runs": {"none": _timed(None, 11.0), "bn": _timed("torch", 13.0),  # a's runs, reused
                               "cnn-none": _timed(None, 10.0, model="cnn"), "cnn-bn": _timed("torch", 20.0,
                                                                                             model="cnn")}}
    out = RL.step_overhead([a, None, b])
    ratios = sorted(p["ratio"] for p in out["pairs"])
    # 13/10 = 1.3; (6/50)/(8/100) = 1.5; cnn 2.0; b's reused bn run counted once
    assert ratios == pytest.approx([1.3, 1.5, 2.0])
    assert out["median_overhead"][("mlp", "torch")] == pytest.approx(0.4) and out["count"][("mlp", "torch")] == 2
    assert out["median_overhead_all"] == pytest.approx(0.5) and out["slower_fraction"] == 1.0
    assert RL.claim_overhead(out)["verdict"] == RL.SUPPORTED
    a["runs"]["none-half"] = _timed(None, 20.0, seed=1)  # now BN is "faster" in one pair of three
    noisy_times = RL.step_overhead([a, b])
    assert noisy_times["slower_fraction"] == pytest.approx(2 / 3)
    assert RL.claim_overhead(noisy_times)["verdict"] == RL.MIXED
    assert RL.claim_overhead(RL.step_overhead([]))["verdict"] == RL.NOT_TESTED


@pytest.mark.parametrize(("median", "verdict"), [(0.3, RL.SUPPORTED), (0.15, RL.SUPPORTED), (0.6, RL.SUPPORTED),
                                                 (0.1, RL.MIXED), (0.61, RL.MIXED), (0.9, RL.MIXED),
                                                 (0.0, RL.NOT_SUPPORTED), (-0.2, RL.NOT_SUPPORTED)])
def test_claim_overhead_thresholds(median, verdict):
    ov = {"median_overhead_all": median, "median_overhead": {("mlp", "torch"): median},
          "count": {("mlp", "torch"): 3}}
    assert RL.claim_overhead(ov)["verdict"] == verdict


def test_claim_smooths():
    def res(bn_recs):
        none = [([1.0, 0.5], [0.1, 0.4], 2.0)]
        return {"runs": {"none": _land_run(none), "bn": _land_run(bn_recs, norm="torch")}}

    assert RL.claim_smooths(res([([1.0, 0.8], [0.1, 0.2], 1.0)]))["verdict"] == RL.SUPPORTED
    assert RL.claim_smooths(res([([1.0, 0.2], [0.1, 0.5], 3.0)]))["verdict"] == RL.NOT_SUPPORTED
    row = RL.claim_smooths(res([([1.0, 0.2], [0.1, 0.2], 1.0)]))  # larger loss range, smaller changes
    assert row["verdict"] == RL.MIXED and row["numbers"]["median_loss_range_bn"] == pytest.approx(0.8)


def test_claim_lp_smooth():
    none = [([1.0, 0.5], [0.1, 0.4], 2.0)]  # loss range 0.5, gradient change 0.4, beta 2

    def res(bn, l1, linf):
        runs = {"none": _land_run(none), "bn": _land_run(bn, norm="torch"), "l1": _land_run(l1, norm="l1"),
                "linf": _land_run(linf, norm="linf")}
        return {"runs": runs}

    two = [([1.0, 0.2], [0.1, 0.2], 1.0)]  # loss range larger, the other two smaller: 2 of 3
    three = [([1.0, 0.8], [0.1, 0.2], 1.0)]  # all three smaller
    zero = [([1.0, 0.2], [0.1, 0.5], 3.0)]  # none smaller
    one = [([1.0, 0.2], [0.1, 0.5], 1.0)]  # only beta smaller
    row = RL.claim_lp_smooth(res(two, two, three))
    assert row["verdict"] == RL.SUPPORTED and row["numbers"]["wins"] == {"bn": 2, "l1": 2, "linf": 3}
    assert row["numbers"]["median_beta_l1"] == pytest.approx(1.0)
    assert RL.claim_lp_smooth(res(two, one, three))["verdict"] == RL.MIXED
    assert RL.claim_lp_smooth(res(two, zero, zero))["verdict"] == RL.NOT_SUPPORTED
    assert RL.claim_lp_smooth(res(zero, zero, one))["verdict"] == RL.MIXED  # BN 0: an l_p run needs at least one
    assert RL.claim_lp_smooth(None)["verdict"] == RL.NOT_TESTED
    with pytest.raises(ValueError, match="no run 'l1'"):
        RL.claim_lp_smooth({"runs": {"none": _land_run(none), "bn": _land_run(two, norm="torch")}})


def test_claim_recipe():
    base = {"dropout": 0.3, "weight_decay": 5e-4, "lr_decay_every": 1200}

    def recipe(accs_by_step):
        runs = {"none-baseline": _acc_run([0.1, 0.2, 0.4, 0.5, 0.5], **base)}
        cfg = dict(base, norm="torch")
        for label, change, accs in accs_by_step:
            cfg = {**cfg, **change}
            runs[label] = _acc_run(accs, **cfg)
        return {"runs": runs}

    steps = [("bn-baseline", {}, [0.1, 0.3, 0.45, 0.5, 0.6]),  # target 0.5 at 300
             ("+lr x5", {"lr": 0.5}, [0.1, 0.4, 0.5, 0.6, 0.6]),  # 200: helps
             ("+no dropout", {"dropout": 0.0}, [0.1, 0.4, 0.5, 0.6, 0.65]),  # 200, higher final: helps
             ("+L2 / 5", {"weight_decay": 1e-4}, [0.1, 0.4, 0.45, 0.6, 0.6]),  # 300: does not help
             ("+decay", {"lr_decay_every": 200}, [0.1, 0.4, 0.45, 0.55, 0.55])]  # 300 again, lower final: no
    row = RL.claim_recipe(recipe(steps))
    assert row["verdict"] == RL.MIXED
    assert list(row["numbers"]["helps"].values()) == [True, True, False, False]
    assert "learning rate 0.1 → 0.5" in row["numbers"]["helps"]
    assert RL.claim_recipe(recipe(steps[:3]))["verdict"] == RL.SUPPORTED
    never = [steps[0], ("+lr x5", {"lr": 0.5}, [0.1, 0.2, 0.3, 0.3, 0.3])]
    assert RL.claim_recipe(recipe(never))["verdict"] == RL.NOT_SUPPORTED


def test_claim_bjorck():
    acc = {(None, 1): 0.50, (None, 2): 0.52, (None, 5): 0.40, ("torch", 1): 0.51, ("torch", 2): 0.53,
           ("torch", 5): 0.60}
    row = RL.claim_bjorck(_sweep(acc), 0.1)  # advantage 0.08; at no-BN's best rate (2x) 0.01
    assert row["verdict"] == RL.SUPPORTED and row["numbers"]["k_none"] == 2
    assert row["numbers"]["advantage"] == pytest.approx(0.08) and row["numbers"]["at_same_rate"] == pytest.approx(0.01)
    assert RL.claim_bjorck(_sweep({**acc, ("torch", 2): 0.60}), 0.1)["verdict"] == RL.NOT_SUPPORTED
    assert RL.claim_bjorck(_sweep({**acc, ("torch", 2): 0.57}), 0.1)["verdict"] == RL.MIXED
    assert RL.claim_bjorck(_sweep({**acc, ("torch", 5): 0.45, ("torch", 2): 0.5}), 0.1)["verdict"] == RL.MIXED


def test_ledger_without_results():
    checks = {"scale": ID.scale_invariance_check(), "identity": ID.identity_check()}
    rows = RL.claims_ledger({}, checks, 0.1)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 16
    untested = {r["key"] for r in rows if r["verdict"] == RL.NOT_TESTED}
    assert untested == set(keys) - {"scale_invariance", "identity"}
    counts = RL.verdict_counts(rows)
    assert counts == {RL.SUPPORTED: 2, RL.NOT_SUPPORTED: 0, RL.MIXED: 0, RL.NOT_TESTED: 14}
    assert all(r["rule"] and r["claim"] for r in rows)
    with pytest.raises(ValueError, match="verdict must be one of"):
        RL._row("k", "c", [], [], "rule", "probably", "m")


# --------------------------------------------------------------------------- figures draw the data
def test_figure_why_training_draws_the_curves():
    runs = {"none": _run(None, (0, 10, 20), curves={"train_loss": [None, 1.0, 0.5], "test_acc": [0.1, 0.9, 0.95],
                                                     "test_acc_batchstats": [0.1, 0.9, 0.95]}),
            "bn": _run("torch", (0, 10, 20), curves={"train_loss": [None, 0.8, 0.4], "test_acc": [0.1, 0.92, 0.96],
                                                      "test_acc_batchstats": [0.1, 0.91, 0.94]})}
    fig = PW.figure_why_training(runs)
    a, b = fig.axes
    assert [list(line.get_ydata()) for line in a.lines] == [[1.0, 0.5], [0.8, 0.4]]
    assert len(b.lines) == 3  # eval mode for both, batch statistics for BN only
    np.testing.assert_allclose(b.lines[2].get_ydata(), [90.0, 9.0, 6.0])
    plt.close(fig)


def test_figure_why_ics_and_landscape_layout():
    ics = {"none": RW.ics_summary(_ics_run([[1.0, 2.0], [3.0, 4.0]], [[0.9, 0.8], [0.7, 0.6]])),
           "bn": RW.ics_summary(_ics_run([[0.5, 0.5], [0.4, 0.4]], [[0.99, 0.98], [0.97, 0.96]], norm="torch"))}
    fig = PW.figure_why_ics(ics)
    assert len(fig.axes) == 4
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), [2.0, 4.0])  # l2 of the second layer, no BN
    np.testing.assert_allclose(fig.axes[3].lines[1].get_ydata(), [0.98, 0.96])  # cosine of the second layer, BN
    plt.close(fig)
    land = {"none": RW.landscape_summary(_land_run([([1.0, 0.5], [0.1, 0.4], 2.0), ([0.5, 0.4], [0.1, 0.2], 1.0)]))}
    fig = PW.figure_why_landscape(land)
    np.testing.assert_allclose(fig.axes[2].lines[0].get_ydata(), [2.0, 1.0])
    plt.close(fig)
    runs = {"none": _pct_run(None, [0.0, 0.5, 1.0, 1.5]), "noisy": RW.as_trained(_pct_run("noisy", [0.0] * 4),
                                                                                  _draws(shift_at={10: 2.0}))}
    fig = PW.figure_why_shift(runs, layer=-1, unit=1)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), [0.0, 2.0, 0.0, 0.0])
    plt.close(fig)


def test_ledger_rendering():
    rows = [RL._row("a", "claim a", ["k1", "k2"], [("mnist", "init sweep", "mnist-init"), ("cifar", "", None)],
                   "rule a", RL.SUPPORTED, "x | y"),
            RL._row("b", "claim b", [], [("transform", "identity", None)], "rule b", RL.NOT_TESTED, "m",
                   source_note="lecture notes")]
    md = RL.ledger_markdown(rows, {"mnist"})
    blocks = md.split("\n\n")  # one block per claim, numbered as the rules are, no table
    assert len(blocks) == 2 and "|---" not in md
    assert blocks[0].splitlines() == ["1. **claim a**", "   - source: {cite:p}`k1`; {cite:p}`k2`",
                                      "   - tested in: {ref}`init sweep <mnist-init>`", "   - measured here: x | y",
                                      "   - verdict: **supported**"]
    # the only place is in a chapter not in the book
    assert blocks[1].splitlines()[1:3] == ["   - source: lecture notes", "   - tested in: –"]
    assert blocks[1].startswith("2. **claim b**") and blocks[1].endswith("   - verdict: **not tested**")
    assert "{doc}`cifar`" in RL.ledger_markdown(rows, {"mnist", "cifar"})
    assert RL.ledger_table(rows).cells() == [["1", "claim a", "supported"], ["2", "claim b", "not tested"]]
    assert RL.rules_markdown(rows).splitlines() == ["1. **claim a.** rule a", "2. **claim b.** rule b"]



# --------------------------------------------------------------------------- margins that the measurement uses
def test_claim_init_and_higher_lr_measure_with_their_margins():
    from dataclasses import replace

    from bnlib.reports import rules as R

    sweep = _init_sweep
    res = sweep([0.97, 0.97, 0.5, 0.3], [0.5, 0.98, 0.97, 0.97])
    assert RL.claim_init(res)["verdict"] == RL.MIXED  # BN 0.1..10 does not contain no-BN's 0.01..0.1
    wide = RL.claim_init(res, claim=replace(R.INIT, margins={"within": 0.5}))  # none 0.01..1, BN 0.01..10
    assert wide["verdict"] == RL.SUPPORTED and wide["measured"].startswith("within 50 points of its best")
    assert "within 50 points of that best" in wide["rule"]
    acc = {(None, 1): 0.50, (None, 2): 0.48, (None, 5): None, ("torch", 1): 0.52, ("torch", 2): 0.52,
           ("torch", 5): 0.46, ("torch", 10): 0.30}
    assert RL.claim_higher_lr(_sweep(acc), 0.1)["verdict"] == RL.SUPPORTED  # threshold 0.45: k_bn 5, k_none 2
    strict = RL.claim_higher_lr(_sweep(acc), 0.1, claim=replace(R.HIGHER_LR, margins={**R.HIGHER_LR.margins,
                                                                                      "drop": 0.03}))
    assert strict["verdict"] == RL.NOT_SUPPORTED and strict["numbers"]["k_bn"] == 2  # threshold 0.47
    assert "(threshold 47.0%)" in strict["measured"] and "minus 3 points" in strict["rule"]


# --------------------------------------------------------------------------- what book/why.ipynb glues
def _values(glued: dict) -> dict:
    return {k: v.value for k, v in glued.items()}


def test_setup_numbers():
    bn = _run("torch", sizes=[784, 7, 7, 7, 10], probe_units=[0, 1, 2], lr=0.5, record_every=300, optimizer="sgd",
              momentum=0.0, batch_size=60, init_sigma=0.1, recorders=[])
    bn["config"]["steps"] = 900
    land = {"runs": {"bn": {**bn, "config": {**bn["config"], "recorders": ["ics", "landscape"]}}}}
    out = RW.setup_numbers({"runs": {"bn": bn}}, land, shift_std=0.5, scale_spread=1.0, landscape_steps=(0.1, 0.4, 2.0),
                           n_test=10000, momentum=0.1)
    assert _values(out) == {"why_steps": 900, "why_every": 300, "why_lr": 0.5, "why_batch": 60, "why_depth": 3,
                            "why_width": 7, "why_sigma": 0.1, "why_shift_std": 0.5, "why_scale_hi": 2.0,
                            "why_eta_lo": 0.05, "why_eta_hi": 1.0, "why_n_eta": 3, "why_nunits": 3,
                            "why_ntest": 10000, "why_momentum": 0.1,
                            "why_half_life": pytest.approx(math.log(2) / math.log(1 / 0.9))}
    assert out["why_half_life"].digits == 4
    other = {"runs": {"bn": {**bn, "config": {**land["runs"]["bn"]["config"], "lr": 0.1}}}}
    with pytest.raises(ValueError, match="repeat the noisy-BN experiment's BN network"):
        RW.setup_numbers({"runs": {"bn": bn}}, other, shift_std=0.5, scale_spread=1.0, landscape_steps=(0.1,),
                         n_test=1, momentum=0.1)


def _noisy_experiment(acc_noisy=0.961):
    """Three runs on which every statement of the noisy-BN section holds (one hidden layer, probed unit 1)."""
    spec = {"none": (None, [5.0, 0.0, 0.5, 0.25], [1.0, 0.3, 0.1], [0.1, 0.9, 0.93, 0.94], 0.960, None),
            "bn": ("torch", [0.0] * 4, [0.4, 0.3, 0.2], [0.1, 0.95, 0.96, 0.965], 0.970, 0.965),
            "noisy": ("noisy", [0.0] * 4, [0.3, 0.3, 0.25], [0.1, 0.9, 0.95, 0.91], acc_noisy, 0.966)}
    runs = {}
    for k, (norm, medians, loss, test, final, final_b) in spec.items():
        run = _pct_run(norm, medians)
        run["config"]["steps"] = 30
        run["curves"] |= {"train_loss": [None, *loss], "test_acc": test,
                          "test_acc_batchstats": [0.1, 0.96, 0.965, 0.968]}
        run["summary"] |= {"final_test_acc": final, "final_test_acc_batchstats": final_b}
        runs[k] = run
    return {"runs": runs}, _draws(shift_at={10: 0.0, 20: 2.0, 30: 1.0})


def test_noisy_numbers():
    res, draws = _noisy_experiment()
    out = RW.noisy_numbers(res, draws, tail=3)
    v = _values(out)
    # shift: none's medians 0, 0.5, 0.25 after step 0 -> range 0.5 over a spread of 2; noisy's draws shift 0, 2, 1
    assert v["why_shift_none"] == pytest.approx(0.25) and v["why_shift_bn"] == 0.0
    assert v["why_shift_noisy"] == pytest.approx(1.0) and v["why_shift_ratio"] == pytest.approx(4.0)
    assert (v["why_early_none"], v["why_early_bn"], v["why_early_noisy"]) == (1.0, 0.4, 0.3)
    assert (v["why_late_none"], v["why_late_bn"], v["why_late_noisy"]) == (0.1, 0.2, 0.25)  # steps > 24: step 30
    assert v["why_acc_bn"] == pytest.approx(97.0) and v["why_accb_noisy"] == pytest.approx(96.6)
    assert v["why_late_from"] == 24 and v["why_tail"] == 3 and v["why_unit"] == 1 and v["why_last_layer"] == 1
    # the largest change among the last 3 records: noisy 0.9 -> 0.95, BN 0.95 -> 0.96, noisy with batch statistics
    # 0.96 -> 0.965, in points
    assert v["why_wob_noisy"] == pytest.approx(5.0) and v["why_wob_bn"] == pytest.approx(1.0)
    assert v["why_wob_noisy_b"] == pytest.approx(0.5) and out["why_wob_noisy"].digits == 4
    assert list(out)[:4] == ["why_shift_none", "why_early_none", "why_late_none", "why_acc_none"]
    # late losses 0.1 (none) < 0.2 (BN) < 0.25 (noisy); with batch statistics noisy 96.6% and BN 96.5% are level
    assert v["why_late_text"].startswith("*Later*, the ordering of the training losses turns around.")
    assert "the network without BN has the lowest training loss, 0.1000, then BN with 0.2000" in v["why_late_text"]
    assert v["why_level"] == "With batch statistics on both, noisy BN (96.60%) and BN (96.50%) are level."
    res2, draws2 = _noisy_experiment()
    res2["runs"]["bn"]["curves"]["train_loss"][-1] = 0.05  # BN now lowest late in training
    res2["runs"]["noisy"]["summary"]["final_test_acc_batchstats"] = 0.975
    v2 = _values(RW.noisy_numbers(res2, draws2, tail=3))
    assert "changes. " in v2["why_late_text"] and "BN has the lowest training loss, 0.0500" in v2["why_late_text"]
    assert "noisy BN (97.50%) is even ahead of BN (96.50%), by 1.00 points" in v2["why_level"]
    trained = RW.trained_runs(res, draws)
    # the record at step t is shifted by the draw of step t + 1: rows 0, 10, 20, 30 of the draws
    assert [p[0][0][1] for p in trained["noisy"]["curves"]["percentiles"]] == [0.0, 0.0, 2.0, 1.0]
    assert trained["none"] is res["runs"]["none"]
    with pytest.raises(ValueError, match="noisy BN ends at the test accuracy of no BN"):
        RW.noisy_numbers(*_noisy_experiment(acc_noisy=0.955), tail=3)


def _ics_experiment(bn_l2):
    return {"runs": {"none": _ics_run([[1.0, 2.0], [3.0, 4.0]], [[0.9, 0.8], [0.7, 0.6]]),
                     "bn": _ics_run(bn_l2, [[0.95, 0.9], [0.9, 0.8]], norm="torch")}}


def test_ics_numbers_and_table():
    ics = RW.ics_summaries(_ics_experiment([[0.5, 3.5], [1.0, 3.5]]))
    # per layer medians: none l2 2, 3 and BN 0.75, 3.5 (lower in one layer of two); overall 2.5 vs 2.25
    assert _values(RW.ics_numbers(ics)) == {"why_l2_none": 2.5, "why_cos_none": pytest.approx(0.75),
                                            "why_l2_bn": 2.25, "why_cos_bn": pytest.approx(0.9), "why_ics_first": 2,
                                            "why_ics_last": 3, "why_ics_n": 2, "why_l2_lower": 1, "why_n_layers": 2}
    assert RW.ics_table(ics).cells() == [["2", "2.0000", "0.7500", "0.8000", "0.9250"],
                                         ["3", "3.0000", "3.5000", "0.7000", "0.8500"]]
    assert _values(RW.ics_numbers(RW.ics_summaries(_ics_experiment([[0.5, 0.5], [1.0, 1.0]]))))["why_l2_lower"] == 2
    with pytest.raises(ValueError, match="lower in some layers"):
        RW.ics_numbers(RW.ics_summaries(_ics_experiment([[5.0, 5.0], [6.0, 6.0]])))


def test_landscape_numbers():
    def land(bn_loss0):
        return {"runs": {"none": _land_run([([1.0, 0.5], [0.1, 0.4], 2.0)]),
                         "bn": _land_run([([2.0, 1.4], [0.1, 0.2], 1.0)], norm="torch", loss0=bn_loss0)}}

    out = _values(RW.landscape_numbers(RW.landscape_summaries(land(2.0))))
    texts = {k: out.pop(k) for k in ("why_loss_text", "why_landscape_overview")}
    assert out == pytest.approx({"why_range_none": 0.5, "why_gc_none": 0.4, "why_beta_none": 2.0,
                                 "why_loss0_none": 1.0, "why_relrange_none": 50.0, "why_range_bn": 0.6,
                                 "why_gc_bn": 0.2, "why_beta_bn": 1.0, "why_loss0_bn": 2.0,
                                 "why_relrange_bn": 30.0})
    assert "varies *more*" in texts["why_loss_text"] and "the loss level" in texts["why_loss_text"]
    assert "counts this measure against BN" in texts["why_loss_text"]
    low = _values(RW.landscape_numbers(RW.landscape_summaries(land(0.5))))
    assert "varies *more*" in low["why_loss_text"] and "the loss level" not in low["why_loss_text"]


def test_landscape_text_when_the_loss_varies_less_with_bn():
    land = {"runs": {"none": _land_run([([1.0, 0.5], [0.1, 0.4], 2.0)]),
                     "bn": _land_run([([1.0, 0.8], [0.1, 0.2], 1.0)], norm="torch", loss0=0.5)}}
    v = _values(RW.landscape_numbers(RW.landscape_summaries(land)))
    assert v["why_loss_text"].startswith("The loss also varies less along the gradient with BN")
    assert "counts this measure for BN" in v["why_loss_text"] and "varies less" in v["why_landscape_overview"]


def _lp_run(norm, loss, gc, beta, cos, medians, acc):
    run = _pct_run(norm, medians)
    run["curves"] |= {"landscape": [{"loss0": 1.0, "loss": loss, "grad_change": [0.05, gc], "beta": beta}] * 3,
                      "ics": [{"l2": [None, 1.0], "cos": [None, cos]}] * 3}
    run["summary"]["final_test_acc"] = acc
    return run


def _lp_experiment(acc_l1=0.971):
    return {"runs": {"none": _lp_run(None, [1.0, 0.5], 0.4, 2.0, 0.90, [5.0, 0.0, 0.5, 0.25], 0.95),
                     "bn": _lp_run("torch", [1.0, 0.4], 0.2, 1.0, 0.95, [0.0] * 4, 0.970),
                     "l1": _lp_run("l1", [1.0, 0.4], 0.2, 1.0, 0.96, [0.0, 0.0, 0.2, 0.0], acc_l1),
                     "linf": _lp_run("linf", [1.0, 0.2], 0.5, 3.0, 0.80, [0.0, 0.0, 2.0, 0.0], 0.90)}}


def test_lp_numbers_and_table():
    land = _lp_experiment()
    lp, row = RW.lp_summary(land), RL.claim_lp_smooth(land)
    # wins over none (range 0.5, change 0.4, beta 2): BN and l_1 on change and beta, l_inf on none: mixed
    v = _values(RW.lp_numbers(lp, row))
    assert v["why_v_lp"] == RL.MIXED and [v[f"why_lp_wins_{k}"] for k in RW.LP_LABELS] == [0, 2, 2, 0]
    # shift: range of the median after step 0 over a spread of 2
    assert [v[f"why_lp_shift_{k}"] for k in RW.LP_LABELS] == pytest.approx([0.25, 0.0, 0.1, 1.0])
    assert v["why_lp_acc_l1"] == pytest.approx(97.1) and v["why_lp_beta_linf"] == 3.0
    assert RW.lp_table(lp).cells()[0] == ["none", "95.00", "2.000", "0.4000", "0.5000", "0.9000", "0.250"]
    assert RW.lp_table(lp).cells()[3][0] == "l_inf"
    with pytest.raises(ValueError, match="l_1 as accurate as BN"):
        RW.lp_numbers(RW.lp_summary(_lp_experiment(acc_l1=0.975)), row)


def test_verdict_numbers():
    rows = {k: {"measured": f"m {k}", "verdict": v} for k, v in
            (("reduces_ics", "supported"), ("ics_is_why", "mixed"), ("smooths", "mixed"), ("bjorck", "supported"))}
    out = RW.verdict_numbers(rows)
    assert list(out) == ["why_v_reduces_ics", "why_v_ics_is_why", "why_v_smooths", "why_v_bjorck", "why_side_by_side"]
    assert out["why_v_ics_is_why"].value == "mixed" and out["why_side_by_side"].kind == "md"
    lines = out["why_side_by_side"].value.splitlines()
    assert len(lines) == 6
    assert lines[4] == ("| Is the loss landscape along the gradient smoother with BN? | not addressed | yes "
                        "| m smooths | **mixed** |")
