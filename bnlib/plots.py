"""One function per figure the book shows, and the one figure style of the whole book."""

from __future__ import annotations

import matplotlib as mpl

STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.figsize": (7.0, 3.6),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
}
COLORS = {"none": "#d62728", "bn": "#1f77b4", "torch": "#1f77b4", "bnlib": "#1f77b4", "noisy": "#2ca02c"}


def use_style() -> None:
    """Apply the book's matplotlib style; every chapter calls this once, first."""
    mpl.rcParams.update(STYLE)


# --------------------------------------------------------------------------- train vs test chapter
# Figures of book/train_test.ipynb; each takes what the matching bnlib.reports function returns.
TT_COLORS = {"none": "#d62728", "BN": "#1f77b4", "Batch Renorm": "#9467bd", "Layer Norm": "#2ca02c",
             "Group Norm": "#ff7f0e"}


def _tt_plain_log(ax, axis: str = "y") -> None:
    """Plain numbers (not powers of ten) on a log axis."""
    from matplotlib.ticker import FormatStrFormatter

    a = ax.yaxis if axis == "y" else ax.xaxis
    a.set_major_formatter(FormatStrFormatter("%g"))
    a.set_minor_formatter(FormatStrFormatter("%g"))


def _tt_log_ticks(ax) -> None:
    """Plain-number labels on a log y axis, no minor labels: at 1, 1.5, 2, 3, 5 and 7 times the powers of
    ten when the axis spans about a decade, at 1, 2 and 5 up to 2.5 decades, else at the powers of ten.
    Call it after the limits are set."""
    import math

    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    lo, hi = ax.get_ylim()
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 3.0
    subs = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if decades < 1.2 else (1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs, numticks=30))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def figure_tt_conventions(fast: dict, slow: dict, true_mean: float, true_var: float, n: int, p_fast: float,
                          p_slow: float, channel: int = 0):
    """Running averages of one channel under PyTorch's and Keras' conventions.

    ``fast`` and ``slow`` are :func:`bnlib.reports.running_conventions` outputs for PyTorch
    momentum ``p_fast`` (Keras ``1 - p_fast``) and ``p_slow`` (Keras ``1 - p_slow``).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    k = np.arange(1, len(fast["torch_mean"]) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    a.plot(k, fast["torch_mean"][:, channel], color="#1f77b4", label=f"PyTorch, momentum {p_fast:g}")
    a.plot(k, fast["keras_mean"][:, channel], color="#ff7f0e", ls="--", label=f"Keras, momentum {1 - p_fast:g}")
    a.plot(k, slow["keras_mean"][:, channel], color="#2ca02c", label=f"Keras, momentum {1 - p_slow:g} (default)")
    a.axhline(true_mean, color="k", lw=0.8, ls=":", label="true mean")
    a.set(xlabel="batches seen", ylabel="running mean", title="(a) running mean (same rule)")
    a.legend(loc="lower right")
    b.plot(k, fast["torch_var"][:, channel], color="#1f77b4", label=f"PyTorch {p_fast:g}: unbiased")
    b.plot(k, fast["keras_var"][:, channel], color="#ff7f0e", ls="--", label=f"Keras {1 - p_fast:g}: biased")
    b.axhline(true_var, color="k", lw=0.8, ls=":", label=r"true $\sigma^2$")
    b.axhline(true_var * (n - 1) / n, color="k", lw=0.8, ls="-.", label=rf"$\frac{{m-1}}{{m}}\sigma^2$, m = {n}")
    b.set(xlabel="batches seen", ylabel="running variance", title="(b) running variance")
    b.legend(loc="lower right")
    fig.tight_layout()
    return fig


def figure_tt_train_eval(gap: dict, batch_size: int):
    """Test accuracy in eval mode vs with batch statistics along training (:func:`reports.train_eval_gap`)."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    step = gap["step"]
    a.plot(step, [100 * (1 - v) for v in gap["eval"]], color="#1f77b4", label="eval mode (population statistics)")
    a.plot(step, [100 * (1 - v) for v in gap["batch"]], color="#ff7f0e", ls="--",
           label=f"train mode (batch statistics, batches of {batch_size})")
    a.set(xlabel="training step", ylabel="test error (%)", yscale="log", title="(a) test error, two ways")
    _tt_log_ticks(a)
    a.legend(loc="upper right")
    b.plot(step, [100 * g for g in gap["gap"]], color="k", marker="o", ms=3)
    b.axhline(0, color="grey", lw=0.8)
    b.set(xlabel="training step", ylabel="gap (percentage points)", title="(b) eval minus batch-stats accuracy")
    fig.tight_layout()
    return fig


def figure_tt_population(summary: dict, floor: float = 1e-5):
    """Per BN layer: how far running averages and Algorithm 2 are from the exact statistics.

    Differences below ``floor`` (exact up to rounding) are drawn at ``floor`` and marked "exact".
    """
    import matplotlib.pyplot as plt
    import numpy as np

    layers = summary["layers"]
    x = np.arange(1, len(layers) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.2))
    for ax, (kind, title) in zip(axes, (("mean", r"(a) max$_k$ |mean - exact mean|"),
                                         ("var_rel", r"(b) max$_k$ |var / exact var - 1|")), strict=True):
        series = [(-0.2, "running", "#1f77b4", "running averages"), (0.2, "alg2", "#2ca02c", "Algorithm 2")]
        shown = [l[f"{k}_vs_exact_{kind}"] for _, k, _, _ in series for l in layers]
        bottom = 0.3 * min([v for v in shown if v >= floor] or [floor])
        top = 3.0 * max(shown + [bottom])
        for dx, key, color, label in series:
            vals = [l[f"{key}_vs_exact_{kind}"] for l in layers]
            ax.bar(x + dx, [v if v >= floor else bottom for v in vals], 0.4, color=color, label=label)
            for xi, v in zip(x + dx, vals, strict=True):
                if v < floor:
                    ax.text(xi, bottom * 1.2, "exact", ha="center", va="bottom", fontsize=8, rotation=90)
        ax.set(xlabel="BN layer", yscale="log", title=title, xticks=x)
        ax.set_ylim(bottom, top)
        _tt_log_ticks(ax)
        ax.legend(loc="upper right", ncol=2)
    fig.tight_layout()
    return fig


def figure_tt_test_batches(summary: dict):
    """Test accuracy with batch statistics by test-batch size, vs eval mode (:func:`reports.test_batch_summary`)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    ax.plot(summary["sizes"], [100 * a for a in summary["acc"]], "o-", color="#ff7f0e",
            label="batch statistics, i.i.d. test batches")
    ax.axhline(100 * summary["eval_mode"], color="#1f77b4", label="eval mode (any batch size, 1 included)")
    ax.plot([64], [100 * summary["one_class"]], "s", color="#d62728", ms=7,
            label="batch statistics, one-class batches of 64")
    ax.set(xscale="log", xlabel="test batch size", ylabel="test accuracy (%)",
           title="Evaluating with batch statistics (size 1: an error)")
    ax.set_xticks(summary["sizes"], [str(s) for s in summary["sizes"]])
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def figure_tt_batch_size(grid: dict):
    """Test error vs training batch size per normalization, and the train/eval gap (:func:`reports.batch_size_grid`)."""
    import matplotlib.pyplot as plt

    sizes = grid["sizes"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    for n in grid["norms"]:
        ys = [grid["acc"][n].get(s) for s in sizes]
        a.plot(sizes, [None if y is None else 100 * (1 - y) for y in ys], "o-", color=TT_COLORS.get(n), label=n)
        if any(g not in (None, 0.0) for g in grid["gap"][n].values()):
            gs = [grid["gap"][n].get(s) for s in sizes]
            b.plot(sizes, [None if g is None else 100 * g for g in gs], "o-", color=TT_COLORS.get(n), label=n)
    a.set(xscale="log", yscale="log", xlabel="training batch size", ylabel="test error (%), eval mode",
          title="(a) one epoch, learning rate 0.5 B / 60")
    _tt_log_ticks(a)
    b.axhline(0, color="grey", lw=0.8)
    b.set(xscale="log", xlabel="training batch size", ylabel="gap (percentage points)",
          title="(b) eval minus batch-stats accuracy")
    for ax in (a, b):
        ax.set_xticks(sizes, [str(s) for s in sizes])
    a.legend()
    b.legend()
    fig.tight_layout()
    return fig


def figure_tt_noniid(grid: dict):
    """Test accuracy after training on i.i.d. vs few-class batches, per norm (:func:`reports.noniid_grid`)."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Patch

    norms = list(grid)
    samplers = list(dict.fromkeys(s for by in grid.values() for s in by))
    x = np.arange(len(norms))
    w = 0.8 / len(samplers)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4), sharey=True)
    hatches = ("", "//", "xx")
    for ax, (key, title) in zip(axes, (("test_acc", "(a) eval mode"),
                                       ("test_acc_batch", "(b) batch statistics (i.i.d. test batches)")), strict=True):
        for j, s in enumerate(samplers):
            vals = [grid[n].get(s, {}).get(key) for n in norms]
            ax.bar(x + (j - (len(samplers) - 1) / 2) * w, [0 if v is None else 100 * v for v in vals], w,
                   color=[TT_COLORS.get(n) for n in norms], hatch=hatches[j % 3], edgecolor="white")
        ax.set_xticks(x, norms)
        ax.set(title=title, ylim=(0, 100))
    axes[0].set_ylabel("test accuracy (%)")
    handles = [Patch(facecolor="#bbbbbb", edgecolor="white", hatch=hatches[j % 3], label=f"training batches: {s}")
               for j, s in enumerate(samplers)]
    axes[0].legend(handles=handles, loc="lower left", frameon=True)
    fig.tight_layout()
    return fig


def figure_tt_regularizer(rows: list[dict]):
    """Training and test error, and training and test loss, with and without BN and dropout
    (:func:`reports.regularizer_grid`)."""
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(rows))
    colors = [TT_COLORS.get(r["norm"]) for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.5, 3.4))
    for ax, (kind, scale, ylabel, title) in zip((a, b), (("acc", 100, "error (%)", "(a) classification error"),
                                                         ("loss", 1, "cross-entropy", "(b) loss")), strict=True):
        train = [scale * (1 - r["train_acc"]) if kind == "acc" else r["train_loss"] for r in rows]
        test = [scale * (1 - r["test_acc"]) if kind == "acc" else r["test_loss"] for r in rows]
        ax.bar(x - 0.2, train, 0.4, color="#8c8c8c", label="training images")
        ax.bar(x + 0.2, test, 0.4, color=colors, label="test images")
        ax.set_xticks(x, [f"{r['norm']}\ndropout {r['dropout']:g}" for r in rows])
        ax.set(ylabel=ylabel, title=title, ylim=(0, 1.3 * max(train + test)))
        ax.legend(loc="upper right", ncol=2)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- CIFAR-10 chapter
# Figures of book/cifar.ipynb. Each takes an experiment result's ``runs`` mapping; at paper scale
# (labels ending in ``-seedK``) the curves are averaged over seeds, up to the shortest one.


def _cifar_curve(group: list[dict], key: str):
    """(steps, seed-mean of ``curves[key]``) over the records every seed has."""
    import numpy as np

    n = min(len(r["curves"]["step"]) for r in group)
    return (np.asarray(group[0]["curves"]["step"][:n]),
            np.mean([np.asarray(r["curves"][key][:n], dtype=float) for r in group], axis=0))


def figure_cifar_depth(runs: dict, depths: tuple[int, ...]):
    """Test accuracy along training, without and with BN, one panel per depth."""
    import matplotlib.pyplot as plt

    from bnlib.reports import seed_groups

    groups = seed_groups(runs)
    fig, axes = plt.subplots(1, len(depths), figsize=(3.0 * len(depths), 3.0), sharey=True)
    for ax, d in zip(axes, depths, strict=True):
        for norm, name in (("none", "no BN"), ("bn", "BN")):
            steps, acc = _cifar_curve(groups[f"{norm}-depth{d}"], "test_acc")
            ax.plot(steps, 100 * acc, color=COLORS[norm], label=name)
        ax.axhline(10, color="k", lw=0.8, ls=":")
        ax.set(title=f"{d} sigmoid conv layers", xlabel="training step")
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].legend(loc="upper left")
    axes[-1].text(0.98, 10.5, "chance", transform=axes[-1].get_yaxis_transform(), ha="right", va="bottom",
                  fontsize=8)
    fig.tight_layout()
    return fig


def figure_cifar_layers(runs: dict, depth: int):
    """The deep networks layer by layer along training: the fraction of saturated sigmoid inputs
    (|x| > 4.6, where sigmoid' < 0.01) and the norm of each conv layer's loss gradient."""
    import matplotlib.pyplot as plt
    import numpy as np

    from bnlib.reports import seed_groups

    groups = seed_groups(runs)
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(2, 2, figsize=(8.0, 5.6), sharex=True)
    for col, (norm, name) in enumerate((("none", "no BN"), ("bn", "BN"))):
        group = groups[f"{norm}-depth{depth}"]
        steps, sat = _cifar_curve(group, "saturated")
        n = len(steps)
        gsteps = steps[1:]  # no gradient is recorded at step 0
        grads = np.mean([np.asarray(r["curves"]["grad_norm"][1:n], dtype=float) for r in group], axis=0)
        for layer in range(depth):
            c = cmap(layer / max(depth - 1, 1))
            axes[0, col].plot(steps, 100 * sat[:, layer], color=c, label=f"layer {layer + 1}")
            axes[1, col].semilogy(gsteps, grads[:, layer], color=c)
        axes[0, col].set(title=f"{name}, {depth} conv layers", ylim=(-2, 102))
        axes[1, col].set(xlabel="training step")
    axes[0, 0].set_ylabel("saturated inputs (%)")
    axes[1, 0].set_ylabel("gradient norm")
    lo = min(a.get_ylim()[0] for a in axes[1])
    hi = max(a.get_ylim()[1] for a in axes[1])
    for a in axes[1]:
        a.set_ylim(lo, hi)
    axes[0, 1].legend(loc="center left", bbox_to_anchor=(1.0, 0.0), fontsize=8)
    fig.tight_layout()
    return fig


def figure_cifar_lr_sweep(rows: list[dict], runs: dict, show: tuple[float, ...] = (1, 5, 30)):
    """(a) Best and final test accuracy against the learning-rate multiplier (``rows`` from
    :func:`bnlib.reports.lr_sweep`; a diverged run is drawn as an x at zero);
    (b) test accuracy along training for the multipliers in ``show``."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

    from bnlib.reports import seed_groups

    groups = seed_groups(runs)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    for norm, key, name in ((None, "none", "no BN"), ("torch", "bn", "BN")):
        mine = [r for r in rows if r["norm"] == norm]
        ks = [r["multiplier"] for r in mine]
        a.plot(ks, [100 * r["best_acc"] for r in mine], color=COLORS[key], marker="o", label=f"{name}: best")
        fin = [(r["multiplier"], 100 * r["final_acc"]) for r in mine if r["final_acc"] is not None]
        if fin:
            a.plot(*zip(*fin, strict=True), color=COLORS[key], marker="s", ls="--", mfc="none",
                   label=f"{name}: final")
        div = [r["multiplier"] for r in mine if r["diverged"]]
        if div:
            a.plot(div, [0] * len(div), color=COLORS[key], marker="x", ls="none", ms=9, label=f"{name}: diverged")
        for k, style in zip(show, ("-", "--", ":"), strict=False):
            lab = next((r["label"] for r in mine if r["multiplier"] == k), None)
            if lab is None:
                continue
            steps, acc = _cifar_curve(groups[lab], "test_acc")
            b.plot(steps, 100 * acc, color=COLORS[key], ls=style, label=f"{name}, x{k:g}")
    a.set_xscale("log")
    a.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    a.axhline(10, color="k", lw=0.8, ls=":")
    a.set(xlabel="learning rate / baseline rate", ylabel="test accuracy (%)", title="(a) learning-rate sweep")
    a.legend(fontsize=8)
    b.axhline(10, color="k", lw=0.8, ls=":")
    b.set(xlabel="training step", title="(b) along training")
    b.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def figure_cifar_recipe(runs: dict, target: float):
    """Test accuracy along training for each cumulative step of the recipe; dotted: ``target``."""
    import matplotlib.pyplot as plt

    from bnlib.reports import seed_groups

    groups = seed_groups(runs)
    fig, ax = plt.subplots(figsize=(8.0, 3.6))
    cmap = plt.get_cmap("viridis")
    bn = [lab for lab in groups if not lab.startswith("none")]
    for lab, group in groups.items():
        steps, acc = _cifar_curve(group, "test_acc")
        if lab.startswith("none"):
            ax.plot(steps, 100 * acc, color=COLORS["none"], label=f"{lab} (no BN)")
        else:
            i = bn.index(lab)
            ax.plot(steps, 100 * acc, color=cmap(0.9 * i / max(len(bn) - 1, 1)), label=lab)
    ax.axhline(100 * target, color="k", lw=0.8, ls=":", label="no-BN baseline's best")
    ax.set(xlabel="training step", ylabel="test accuracy (%)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- MNIST chapter
# Figures of book/mnist.ipynb; each takes an experiment result or what the matching
# bnlib.reports.mnist_* function returns. "none" is red and BN blue, as everywhere.
MNIST_NETWORKS = (("none", "without BN"), ("bn", "with BN"))


def figure_mnist_accuracy(res: dict, speed: dict | None = None):
    """The paper's Figure 1(a): test accuracy against training steps, with and without BN.

    With ``speed`` (:func:`bnlib.reports.mnist_speedup`), the network without BN's final accuracy
    is drawn as a dotted line and the steps both networks need to reach it are marked.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    lows = []
    for label, name in MNIST_NETWORKS:
        c = res["runs"][label]["curves"]
        ax.plot(c["step"], c["test_acc"], color=COLORS[label], label=name)
        lows += [a for s, a in zip(c["step"], c["test_acc"], strict=True) if s > 0]
    if speed is not None:
        ax.axhline(speed["final_slow"], color="k", lw=0.8, ls=":",
                   label=f"final accuracy without BN ({100 * speed['final_slow']:.2f}%)")
        for key, label in (("fast_to_slow", "bn"), ("slow_to_slow", "none")):
            if speed[key] is not None:
                ax.plot([speed[key]], [speed["final_slow"]], "o", color=COLORS[label], ms=6)
    ax.set(xlabel="training step", ylabel="test accuracy", ylim=(min(lows) - 0.005, 1.0),
           title="MNIST, 3 x 100 sigmoid units: test accuracy")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def figure_mnist_percentiles(res: dict, layer: int, unit: int):
    """The paper's Figure 1(b, c): the 15th, 50th and 85th percentiles of one sigmoid's input over
    training, without BN (left) and with BN (right), on a shared vertical axis."""
    import matplotlib.pyplot as plt

    from bnlib import reports

    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4), sharey=True)
    for ax, (label, name), letter in zip(axes, MNIST_NETWORKS, "bc", strict=True):
        t = reports.mnist_percentiles(res["runs"][label], layer, unit)
        col = COLORS[label]
        ax.fill_between(t["step"], t["p15"], t["p85"], color=col, alpha=0.12, lw=0)
        ax.plot(t["step"], t["p85"], color=col, lw=1.0, ls="--", label="85th percentile")
        ax.plot(t["step"], t["p50"], color=col, label="median")
        ax.plot(t["step"], t["p15"], color=col, lw=1.0, ls="-.", label="15th percentile")
        ax.set(xlabel="training step", title=f"({letter}) {name}")
    lo, hi = axes[0].get_ylim()
    axes[0].set_ylim(lo, hi + 0.35 * (hi - lo))  # room for the legends above the curves
    for ax in axes:
        ax.legend(loc="upper center", ncol=3, fontsize=8)
    n_layers = len(res["runs"]["none"]["curves"]["percentiles"][0])
    axes[0].set_ylabel(f"input to unit {unit} of hidden layer {layer % n_layers + 1}")
    fig.tight_layout()
    return fig


def figure_mnist_saturation(res: dict, threshold: float):
    """Fraction of saturated sigmoid inputs (``|x| > threshold``) over training, one panel per hidden
    layer, with and without BN."""
    import matplotlib.pyplot as plt

    n_layers = len(res["runs"]["none"]["curves"]["saturated"][0])
    fig, axes = plt.subplots(1, n_layers, figsize=(3.2 * n_layers, 3.2))
    for li, ax in enumerate(axes):
        for label, name in MNIST_NETWORKS:
            c = res["runs"][label]["curves"]
            ax.plot(c["step"], [100 * s[li] for s in c["saturated"]], color=COLORS[label], label=name)
        ax.set(xlabel="training step", title=f"hidden layer {li + 1}")
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel(f"saturated inputs, |x| > {threshold:.2f} (%)")
    axes[0].legend(loc="center right")
    fig.tight_layout()
    return fig


def figure_mnist_histograms(res: dict, hists: dict, threshold: float):
    """Distribution of the sigmoid inputs of every hidden layer at a few checkpoints, without BN (top
    row) and with BN (bottom row); ``hists`` maps run labels to :func:`bnlib.reports.mnist_histograms`.
    The saturated range ``|x| > threshold`` is shaded; the outer bins hold everything beyond them."""
    import matplotlib.pyplot as plt

    n_layers = len(hists["none"]["density"][0])
    fig, axes = plt.subplots(2, n_layers, figsize=(3.2 * n_layers, 5.2), sharex=True)
    for row, (label, name) in enumerate(MNIST_NETWORKS):
        h = hists[label]
        colors = plt.cm.viridis([i / max(1, len(h["steps"]) - 1) * 0.85 for i in range(len(h["steps"]))])
        for li in range(n_layers):
            ax = axes[row][li]
            for k, (step, col) in enumerate(zip(h["steps"], colors, strict=True)):
                ax.step(h["centers"], h["density"][k][li], where="mid", color=col, lw=1.2, label=f"step {step:,}")
            for side in (-1, 1):
                ax.axvspan(side * threshold, side * h["edges"][-1], color="grey", alpha=0.12, lw=0)
            ax.set(title=f"{name}, hidden layer {li + 1}", xlim=(h["edges"][0], h["edges"][-1]))
            ax.set_ylim(bottom=0)
            if row == 1:
                ax.set_xlabel("sigmoid input x")
        axes[row][0].set_ylabel("density")
    axes[0][0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def figure_mnist_init_sweep(grid: dict):
    """Final test accuracy (left) and saturated fraction of the sigmoid inputs (right; mean over hidden
    layers) against the Gaussian init sigma, with and without BN (:func:`bnlib.reports.mnist_init_sweep`).
    The right panel shows the saturated fraction at step 0 of the network without BN (dotted: the
    weights every network starts from) and at the end of training for both."""
    import matplotlib.pyplot as plt

    colors = {"none": COLORS["none"], "BN": COLORS["bn"]}
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    first = grid["networks"][0]
    sig0 = [s for s in grid["sigmas"] if s in grid["sat0"][first]]
    b.plot(sig0, [100 * grid["sat0"][first][s] for s in sig0], "o:", color="grey", label="at step 0")
    for n in grid["networks"]:
        sig = [s for s in grid["sigmas"] if s in grid["acc"][n]]
        acc = [grid["acc"][n][s] for s in sig]
        a.plot(sig, [None if v is None else 100 * v for v in acc], "o-", color=colors.get(n), label=n)
        b.plot(sig, [100 * grid["sat_final"][n][s] for s in sig], "o-", color=colors.get(n), label=f"{n}, at the end")
    a.set(xscale="log", xlabel=r"init $\sigma$", ylabel="final test accuracy (%)", title="(a) test accuracy")
    b.set(xscale="log", xlabel=r"init $\sigma$", ylabel="saturated sigmoid inputs (%)",
          title="(b) saturation, mean over hidden layers")
    a.legend(loc="lower left")
    b.legend(loc="upper left")
    fig.tight_layout()
    return fig


def figure_mnist_dense128(summary: dict):
    """The seed article's Dense-128 demo rebuilt: test loss and test accuracy by epoch, with and without
    BN (:func:`bnlib.reports.mnist_dense128`)."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    for label, name in MNIST_NETWORKS:
        d = summary[label]
        a.plot(d["epoch"][1:], d["test_loss"][1:], "o-", color=COLORS[label], ms=3, label=name)
        b.plot(d["epoch"][1:], [100 * v for v in d["test_acc"][1:]], "o-", color=COLORS[label], ms=3, label=name)
    a.set(xlabel="epoch", ylabel="test loss (cross-entropy)", title="(a) test loss")
    b.set(xlabel="epoch", ylabel="test accuracy (%)", title="(b) test accuracy")
    a.legend()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- why BN works chapter
# Figures of book/why.ipynb; each takes runs of the why_noisy / why_landscape results or what the
# matching bnlib.reports function returns.
WHY_LABELS = {"none": "no BN", "bn": "BN", "noisy": "noisy BN"}


def _why_log(ax) -> None:
    """Log-scale y axis labelled with plain numbers at 1, 2 and 5 times the powers of ten."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def figure_why_training(runs: dict):
    """Training loss (mini-batch, as trained) and test error along training, one line per network.

    ``runs`` maps ``"none"``, ``"bn"``, ``"noisy"`` (any subset, in that order) to runs of an
    experiment result. Test error in eval mode (solid) and, for networks with BN, with batch
    statistics (dotted).
    """
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9.5, 3.5))
    for key, run in runs.items():
        c, color, name = run["curves"], COLORS.get(key), WHY_LABELS.get(key, key)
        pts = [(s, v) for s, v in zip(c["step"], c["train_loss"], strict=True) if v is not None]
        a.plot([s for s, _ in pts], [v for _, v in pts], color=color, label=name)
        b.plot(c["step"], [100 * (1 - v) for v in c["test_acc"]], color=color, label=f"{name}, eval mode")
        if run["config"].get("norm"):
            b.plot(c["step"], [100 * (1 - v) for v in c["test_acc_batchstats"]], color=color, ls=":",
                   label=f"{name}, batch statistics")
    a.set(xlabel="training step", ylabel="training loss (mini-batches)", title="(a) training loss, as trained")
    b.set(xlabel="training step", ylabel="test error (%)", title="(b) test error")
    _why_log(a)
    _why_log(b)
    a.legend()
    b.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_why_shift(runs: dict, layer: int, unit: int):
    """The distribution of one unit's sigmoid input as training sees it, one panel per network, on a
    shared vertical axis: the band spans the 15th to 85th percentile, the line is the median.

    ``runs`` maps network keys to runs passed through :func:`bnlib.reports.as_trained`; ``layer``
    and ``unit`` as for :func:`bnlib.reports.mnist_percentiles`.
    """
    import matplotlib.pyplot as plt

    from bnlib import reports

    fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 3.3), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, (key, run) in zip(axes, runs.items(), strict=True):
        t = reports.mnist_percentiles(run, layer, unit)
        color = COLORS.get(key)
        ax.fill_between(t["step"], t["p15"], t["p85"], color=color, alpha=0.25, lw=0, label="15th-85th percentile")
        ax.plot(t["step"], t["p50"], color=color, label="median")
        ax.set(xlabel="training step", title=WHY_LABELS.get(key, key))
    n_layers = len(next(iter(runs.values()))["curves"]["percentiles"][0])
    axes[0].set_ylabel(f"input to unit {unit} of hidden layer {layer % n_layers + 1}")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def figure_why_ics(summaries: dict):
    """Santurkar et al.'s internal covariate shift along training: l2 distance (top) and cosine (bottom)
    between a layer's gradient before and after the earlier layers' update, one column per
    weight layer; ``summaries`` maps network keys to :func:`bnlib.reports.ics_summary` outputs."""
    import matplotlib.pyplot as plt

    first = next(iter(summaries.values()))
    n = len(first["layers"])
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 5.2), sharex=True, squeeze=False)
    for key, s in summaries.items():
        for j in range(len(s["layers"])):
            for row, name in enumerate(("l2", "cos")):
                axes[row][j].plot(s["steps"], s[name][j], color=COLORS.get(key), label=WHY_LABELS.get(key, key))
    for j, layer in enumerate(first["layers"]):
        axes[0][j].set(title=f"weight layer {layer + 1}")
        _why_log(axes[0][j])
        axes[1][j].set(xlabel="training step")
    axes[0][0].set_ylabel(r"$\|G - G'\|_2$")
    axes[1][0].set_ylabel(r"$\cos(G, G')$")
    axes[0][0].legend()
    fig.tight_layout()
    return fig


def figure_why_landscape(summaries: dict):
    """The loss landscape along the gradient at each checkpoint (:func:`bnlib.reports.landscape_summary`):
    (a) range of the loss at ``w - eta g`` over the step sizes, (b) range of the gradient change
    ``||g(w - eta g) - g(w)||``, (c) effective beta-smoothness."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.4))
    for key, s in summaries.items():
        color, name = COLORS.get(key), WHY_LABELS.get(key, key)
        axes[0].fill_between(s["steps"], s["loss_min"], s["loss_max"], color=color, alpha=0.35, lw=0, label=name)
        axes[1].fill_between(s["steps"], s["gc_min"], s["gc_max"], color=color, alpha=0.35, lw=0, label=name)
        axes[2].plot(s["steps"], s["beta"], color=color, label=name)
    axes[0].set(xlabel="training step", ylabel=r"loss at $w - \eta g$", title="(a) loss along $-g$")
    axes[1].set(xlabel="training step", ylabel=r"$\|g(w - \eta g) - g(w)\|$", title="(b) gradient predictiveness")
    axes[2].set(xlabel="training step", ylabel=r"max$_\eta$ change / $\|\eta g\|$",
                title=r"(c) effective $\beta$-smoothness")
    for ax in axes:
        _why_log(ax)
        ax.legend()
    fig.tight_layout()
    return fig
