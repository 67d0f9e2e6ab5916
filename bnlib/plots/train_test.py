"""Figures of book/train_test.ipynb; each takes what the matching :mod:`bnlib.reports.train_test` function returns."""

from __future__ import annotations

import numpy as np

from bnlib.plots.style import NOTE_POINTS, legend_below, log_ticks, panels
from bnlib.vocabulary import BLUE, GREEN, GREY, ORANGE, RED, colour


def figure_tt_conventions(fast: dict, slow: dict, true_mean: float, true_var: float, n: int, p_fast: float,
                          p_slow: float, channel: int = 0):
    """Running averages of one channel under PyTorch's and Keras' conventions.

    ``fast`` and ``slow`` are :func:`bnlib.reports.running_conventions` outputs for PyTorch
    momentum ``p_fast`` (Keras ``1 - p_fast``) and ``p_slow`` (Keras ``1 - p_slow``).
    """
    k = np.arange(1, len(fast["torch_mean"]) + 1)
    fig, (a, b) = panels(1, 2, figsize=(9.0, 3.4))
    a.plot(k, fast["torch_mean"][:, channel], color=BLUE, label=f"PyTorch, momentum {p_fast:g}")
    a.plot(k, fast["keras_mean"][:, channel], color=ORANGE, ls="--", label=f"Keras, momentum {1 - p_fast:g}")
    a.plot(k, slow["keras_mean"][:, channel], color=GREEN, label=f"Keras, momentum {1 - p_slow:g} (default)")
    a.axhline(true_mean, color="k", lw=0.8, ls=":", label="true mean")
    a.set(xlabel="batches seen", ylabel="running mean", title="(a) running mean (same rule)")
    b.plot(k, fast["torch_var"][:, channel], color=BLUE, label=f"PyTorch {p_fast:g}: unbiased")
    b.plot(k, fast["keras_var"][:, channel], color=ORANGE, ls="--", label=f"Keras {1 - p_fast:g}: biased")
    b.axhline(true_var, color="k", lw=0.8, ls=":", label=r"true $\sigma^2$")
    b.axhline(true_var * (n - 1) / n, color="k", lw=0.8, ls="-.", label=rf"$\frac{{m-1}}{{m}}\sigma^2$, m = {n}")
    b.set(xlabel="batches seen", ylabel="running variance", title="(b) running variance")
    fig.tight_layout()
    legend_below(a, ncol=1)
    legend_below(b, ncol=2)
    return fig


#: What every band and error bar of these figures shows (the seed mean is the line or bar).
BAND = "95% t interval of the seed mean"


def _band(ax, x, mean, hw, color, scale=100.0, error=False, **kw):
    """A line at ``mean`` with a shaded band ``mean ± hw`` (``hw`` None: no band), in percent (``error``: 100 - it)."""
    m = np.array([np.nan if v is None else v for v in mean], dtype=float)
    h = np.array([0.0 if v is None else v for v in hw], dtype=float)
    lo, hi = m - h, m + h
    if error:
        m, lo, hi = 1 - m, 1 - hi, 1 - lo
    line, = ax.plot(x, scale * m, color=color, **kw)
    ax.fill_between(x, scale * lo, scale * hi, color=color, alpha=0.2, lw=0)
    return line


def figure_tt_train_eval(band: dict, batch_size: int):
    """Test accuracy in eval mode vs with batch statistics along training, seed means with bands
    (:func:`reports.train_eval_band`)."""
    fig, (a, b) = panels(1, 2, figsize=(9.0, 3.4))
    step = band["step"]
    _band(a, step, band["eval"], band["eval_hw"], BLUE, error=True, label="eval mode (running averages)")
    _band(a, step, band["batch"], band["batch_hw"], ORANGE, error=True, ls="--",
          label=f"train mode (batch statistics, batches of {batch_size})")
    a.set(xlabel="training step", ylabel="test error (%)", yscale="log", title="(a) test error, two ways")
    log_ticks(a)
    _band(b, step, band["gap"], band["gap_hw"], "k", marker="o", ms=3)
    b.axhline(0, color="grey", lw=0.8)
    b.set(xlabel="training step", ylabel="gap (percentage points)", title="(b) eval minus batch-stats accuracy")
    fig.tight_layout()
    legend_below(fig, *a.get_legend_handles_labels(), ncol=2)
    return fig


def figure_tt_population(band: dict, floor: float = 1e-5):
    """Per BN layer: how far running averages and Algorithm 2 are from the exact statistics, seed means with
    error bars (:func:`reports.population_band`: ``layers`` and ``layers_hw``).

    Differences below ``floor`` (exact up to rounding) are drawn at ``floor`` and marked "exact".
    """
    layers = band["layers"]
    hws = band.get("layers_hw") or [{k: 0.0 for k in layer} for layer in layers]
    x = np.arange(1, len(layers) + 1)
    fig, axes = panels(1, 2, figsize=(9.0, 3.2))
    for ax, (kind, title) in zip(axes, (("mean", r"(a) max$_k$ |mean - exact mean|"),
                                         ("var_rel", r"(b) max$_k$ |var / exact var - 1|")), strict=True):
        series = [(-0.2, "running", BLUE, "running averages"), (0.2, "alg2", GREEN, "Algorithm 2")]
        shown = [l[f"{k}_vs_exact_{kind}"] for _, k, _, _ in series for l in layers]
        bottom = 0.3 * min([v for v in shown if v >= floor] or [floor])
        top = 3.0 * max(shown + [bottom])
        for dx, key, color, label in series:
            vals = [l[f"{key}_vs_exact_{kind}"] for l in layers]
            errs = [h[f"{key}_vs_exact_{kind}"] or 0.0 for h in hws]
            heights = [v if v >= floor else bottom for v in vals]
            ax.bar(x + dx, heights, 0.4, color=color, label=label)
            shown_errs = [min(e, h - bottom * 0.5) if v >= floor else 0.0 for e, h, v in zip(errs, heights, vals,
                                                                                             strict=True)]
            ax.errorbar(x + dx, heights, yerr=[shown_errs, errs], fmt="none", ecolor="k", lw=0.8, capsize=2)
            for xi, v in zip(x + dx, vals, strict=True):
                if v < floor:
                    ax.text(xi, bottom * 1.2, "exact", ha="center", va="bottom", fontsize=NOTE_POINTS,
                            rotation=90)
        ax.set(xlabel="BN layer", yscale="log", title=title, xticks=x)
        ax.set_ylim(bottom, top)
        log_ticks(ax)
    fig.tight_layout()
    legend_below(fig, *axes[0].get_legend_handles_labels(), ncol=2)
    return fig


def figure_tt_test_batches(band: dict):
    """Test accuracy with batch statistics by test-batch size, vs eval mode, seed means with error bars
    (:func:`reports.test_batch_band`)."""
    fig, ax = panels(figsize=(6.0, 3.4))
    sizes = band["sizes"]
    ax.errorbar(sizes, [100 * a for a in band["acc"]], yerr=[100 * (h or 0) for h in band["acc_hw"]], fmt="o-",
                color=ORANGE, capsize=3, label="batch statistics, i.i.d. test batches")
    ax.axhline(100 * band["eval_mode"], color=BLUE, label="eval mode (any batch size, 1 included)")
    ax.axhspan(100 * (band["eval_mode"] - (band["eval_mode_hw"] or 0)),
               100 * (band["eval_mode"] + (band["eval_mode_hw"] or 0)), color=BLUE, alpha=0.2, lw=0)
    ax.errorbar([64], [100 * band["one_class"]], yerr=[100 * (band["one_class_hw"] or 0)], fmt="s", color=RED, ms=7,
                capsize=3, label="batch statistics, one-class batches of 64")
    ax.set(xscale="log", xlabel="test batch size", ylabel="test accuracy (%)",
           title="Evaluating with batch statistics (size 1: an error)")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    fig.tight_layout()
    legend_below(ax, ncol=1)
    return fig


def figure_tt_batch_size(band: dict, lr60: float):
    """Test error vs training batch size per normalization, and the population-minus-batch-statistics gap, seed
    means with bands (:func:`reports.batch_size_band`); the runs' learning rate is ``lr60 * B / 60``."""
    sizes = band["sizes"]
    fig, (a, b) = panels(1, 2, figsize=(9.0, 3.6))
    for n in band["norms"]:
        ys, hs = [band["acc"][n].get(s) for s in sizes], [band["acc_hw"][n].get(s) for s in sizes]
        _band(a, sizes, ys, hs, colour(n), error=True, marker="o", label=n)
        if any(g not in (None, 0.0) for g in band["gap"][n].values()):
            _band(b, sizes, [band["gap"][n].get(s) for s in sizes], [band["gap_hw"][n].get(s) for s in sizes],
                  colour(n), marker="o", label=n)
    a.set(xscale="log", yscale="log", xlabel="training batch size", ylabel="test error (%)",
          title=f"(a) one epoch, learning rate {lr60:g} B / 60")
    log_ticks(a)
    b.axhline(0, color="grey", lw=0.8)
    b.set(xscale="log", xlabel="training batch size", ylabel="gap (percentage points)",
          title="(b) population minus batch-stats accuracy")
    for ax in (a, b):
        ax.set_xticks(sizes, [str(s) for s in sizes])
    fig.tight_layout()
    legend_below(fig, *a.get_legend_handles_labels(), ncol=5)
    return fig


def figure_tt_noniid(band: dict):
    """Test accuracy after training on i.i.d. vs few-class batches, per norm, seed means with error bars
    (:func:`reports.noniid_band`: ``{norm: {sampler: {key: (mean, half-width)}}}``)."""
    from matplotlib.patches import Patch

    norms = list(band)
    samplers = list(dict.fromkeys(s for by in band.values() for s in by))
    x = np.arange(len(norms))
    w = 0.8 / len(samplers)
    fig, axes = panels(1, 3, figsize=(9.0, 3.4), sharey=True)
    hatches = ("", "//", "xx")
    for ax, (key, title) in zip(axes, (("test_acc", "(a) population statistics"), ("test_acc_eval", "(b) eval mode"),
                                       ("test_acc_batch", "(c) batch statistics")), strict=True):
        for j, s in enumerate(samplers):
            mh = [band[n].get(s, {}).get(key, (None, None)) for n in norms]
            ax.bar(x + (j - (len(samplers) - 1) / 2) * w, [0 if m is None else 100 * m for m, _ in mh], w,
                   yerr=[100 * (h or 0) for _, h in mh], capsize=2, error_kw={"lw": 0.8},
                   color=[colour(n) for n in norms], hatch=hatches[j % 3], edgecolor="white")
        ax.set_xticks(x, [n.replace("Batch Renorm", "Batch\nRenorm") for n in norms])
        ax.set(title=title, ylim=(0, 100))
    axes[0].set_ylabel("test accuracy (%)")
    handles = [Patch(facecolor="#bbbbbb", edgecolor="white", hatch=hatches[j % 3], label=f"training batches: {s}")
               for j, s in enumerate(samplers)]
    fig.tight_layout()
    legend_below(fig, handles, [h.get_label() for h in handles], ncol=len(handles))
    return fig


def figure_tt_regularizer(rows: list[dict]):
    """Training and test error, and training and test loss, with and without BN and dropout, seed means with error
    bars (:func:`reports.regularizer_band`; rows without ``*_hw`` keys draw no bars)."""
    x = np.arange(len(rows))
    colors = [colour(r["norm"]) for r in rows]
    fig, (a, b) = panels(1, 2, figsize=(9.0, 3.4))
    for ax, (kind, scale, ylabel, title) in zip((a, b), (("acc", 100, "error (%)", "(a) classification error"),
                                                         ("loss", 1, "cross-entropy", "(b) loss")), strict=True):
        train = [scale * (1 - r["train_acc"]) if kind == "acc" else r["train_loss"] for r in rows]
        test = [scale * (1 - r["test_acc"]) if kind == "acc" else r["test_loss"] for r in rows]
        key = "acc" if kind == "acc" else "loss"
        err_tr = [scale * (r.get(f"train_{key}_hw") or 0) for r in rows]
        err_te = [scale * (r.get(f"test_{key}_hw") or 0) for r in rows]
        ax.bar(x - 0.2, train, 0.4, color=GREY, label="training images", yerr=err_tr, capsize=2,
               error_kw={"lw": 0.8})
        ax.bar(x + 0.2, test, 0.4, color=colors, label="test images", yerr=err_te, capsize=2, error_kw={"lw": 0.8})
        ax.set_xticks(x, [f"{r['norm']}\ndropout {r['dropout']:g}" for r in rows])
        ax.set(ylabel=ylabel, title=title, ylim=(0, 1.15 * max(t + e for t, e in zip(train + test, err_tr + err_te,
                                                                                     strict=True))))
    fig.tight_layout()
    # the test bars take each network's colour, so the key shows both kinds of bar, not one bar's colour
    from matplotlib.patches import Patch

    keys = [Patch(facecolor=GREY, label="training images (grey)"),
            Patch(facecolor="none", edgecolor="none", label="test images, in the network's colour:")]
    keys += [Patch(facecolor=colour(n), label=colour_name) for n, colour_name in
             dict.fromkeys((r["norm"], _net_name(r["norm"])) for r in rows)]
    legend_below(fig, keys, [k.get_label() for k in keys], ncol=len(keys))
    return fig


def _net_name(norm: str | None) -> str:
    from bnlib.vocabulary import NORMS, by_name, norm_of

    try:
        return NORMS[norm_of(norm)].legend
    except ValueError:
        return by_name(norm).legend
