"""Computations of the practice chapter (book/practice.ipynb): BN across processes (:func:`shard_check`), what
``model.eval()`` and ``requires_grad=False`` freeze in a BN layer (:func:`freezing_check`), and why the bias of the
layer before BN is useless (:func:`bias_cancels`), and re-estimating BN's statistics on a shifted domain
(:func:`adaptation_check`). Each returns plain numbers for the chapter to show."""

from __future__ import annotations

import socket
import tempfile
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from bnlib import data as bdata
from bnlib import models
from bnlib.distributed import SyncBatchNorm, convert_sync_batchnorm
from bnlib.nn import BatchNorm
from bnlib.threads import one_thread

#: The shape of :func:`shard_check`'s batches: 12 feature maps of 3 channels, 4 x 5 positions.
SHARD_SHAPE = (12, 3, 4, 5)


def _batch(step: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 * seed + step)
    return torch.randn(SHARD_SHAPE, generator=g, dtype=torch.float64) * 2 + 0.5, \
        torch.randn(SHARD_SHAPE, generator=g, dtype=torch.float64)


def _layer(cls) -> nn.Module:
    bn = cls(SHARD_SHAPE[1], momentum=0.3, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.5, -0.5, 2.0], dtype=torch.float64))
        bn.bias.copy_(torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64))
    return bn


def _steps(bn: nn.Module, lo: int, hi: int, steps: int, seed: int) -> dict:
    """``steps`` training steps of ``bn`` on rows ``lo:hi`` of each batch (loss: the outputs weighted by the
    batch's second tensor, summed): outputs, input and parameter gradients, then the running statistics."""
    out: dict = {"y": [], "dx": [], "dw": [], "db": []}
    for step in range(steps):
        x, w = _batch(step, seed)
        xs = x[lo:hi].clone().requires_grad_(True)
        bn.weight.grad = bn.bias.grad = None
        y = bn(xs)
        (y * w[lo:hi]).sum().backward()
        for key, v in (("y", y.detach()), ("dx", xs.grad), ("dw", bn.weight.grad.clone()),
                       ("db", bn.bias.grad.clone())):
            out[key].append(v)
    return out | {"mean": bn.running_mean.clone(), "var": bn.running_var.clone()}


def _spawn(worker, nprocs: int, *args) -> list:
    """Run ``worker(rank, port, folder, world, *args)`` in ``nprocs`` new processes that form a gloo group on
    127.0.0.1 (:func:`_in_group`); each saves its result with :func:`_save`. Returns the results, rank by rank."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(worker, args=(port, folder, nprocs, *args), nprocs=nprocs, join=True)
        return [torch.load(Path(folder) / f"rank{r}.pt") for r in range(nprocs)]


@contextmanager
def _in_group(rank: int, port: int, world: int):
    """This process as ``rank`` of a gloo group of ``world`` on 127.0.0.1, with one thread, torn down on exit."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=120))
    try:
        with one_thread():
            yield
    finally:
        dist.destroy_process_group()


def _save(result, folder: str, rank: int) -> None:
    torch.save(result, Path(folder) / f"rank{rank}.pt")
    dist.barrier()  # no process tears the group down while another still uses it


def _shard_worker(rank: int, port: int, folder: str, world: int, split: tuple[int, ...], steps: int,
                  seed: int) -> None:
    with _in_group(rank, port, world):
        _save(_steps(_layer(SyncBatchNorm), sum(split[:rank]), sum(split[:rank + 1]), steps, seed), folder, rank)


def shard_check(split: tuple[int, ...] = (9, 3), steps: int = 3, seed: int = 0) -> dict:
    """Run :class:`bnlib.distributed.SyncBatchNorm` in ``len(split)`` processes (a gloo group on 127.0.0.1), process
    k holding ``split[k]`` of the 12 examples of each batch, and ``torch.nn.BatchNorm2d`` in this process on all of
    them, for ``steps`` steps in float64. Returns the largest absolute differences: ``out`` (outputs), ``dx`` (input
    gradients), ``dparams`` (parameter gradients summed over the processes), ``running`` (running statistics, on
    every process); ``local``: the largest output difference had each process normalized over its own shard."""
    if sum(split) != SHARD_SHAPE[0] or min(split) < 1:
        raise ValueError(f"split must give every process at least one of the {SHARD_SHAPE[0]} examples, got {split}.")
    ranks = _spawn(_shard_worker, len(split), tuple(split), steps, seed)
    with one_thread():
        ref = _steps(_layer(nn.BatchNorm2d), 0, SHARD_SHAPE[0], steps, seed)
        bounds = [(sum(split[:r]), sum(split[:r + 1])) for r in range(len(split))]
        local = [_steps(_layer(nn.BatchNorm2d), lo, hi, 1, seed)["y"][0] for lo, hi in bounds]

    def gap(a, b) -> float:
        return float((a - b).abs().max())

    cat = lambda key, s: torch.cat([r[key][s] for r in ranks])  # noqa: E731
    return {
        "processes": len(split), "split": tuple(split), "steps": steps,
        "out": max(gap(cat("y", s), ref["y"][s]) for s in range(steps)),
        "dx": max(gap(cat("dx", s), ref["dx"][s]) for s in range(steps)),
        "dparams": max(gap(sum(r[k][s] for r in ranks), ref[k][s]) for s in range(steps) for k in ("dw", "db")),
        "running": max(gap(r[k], ref[k]) for r in ranks for k in ("mean", "var")),
        "local": gap(torch.cat(local), ref["y"][0]),
    }


# --------------------------------------------------------------------------- freezing
#: The four ways of "freezing" a BN layer that :func:`freezing_check` compares: mode, and whether gamma and beta
#: take gradients.
FREEZE_WAYS = (("train mode", True, True), ("model.eval()", False, True), ("requires_grad=False", True, False),
               ("eval() and requires_grad=False", False, False))


def _changed(before: dict, after: dict, keys) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in keys)


def freezing_check(x: torch.Tensor, y: torch.Tensor, seed: int = 0, lr: float = 0.5) -> list[dict]:
    """One SGD step of a small MLP with BN (``x``: a batch of flattened images, ``y``: their labels), after a first
    training step so that the running statistics are not at their initial values, in each way of
    :data:`FREEZE_WAYS`. Per way: ``way``, whether BN's ``gamma_beta`` changed, whether its ``running`` statistics
    changed, whether the other ``weights`` changed, and how much the network's eval-mode output moved (``output``,
    the largest absolute change)."""
    out = []
    for way, train_mode, grads in FREEZE_WAYS:
        torch.manual_seed(seed)
        net = models.SigmoidMLP((x.shape[1], 32, 10), norm="torch")
        bn = models.bn_layers(net)[0]
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        opt.zero_grad()
        net.eval()
        with torch.no_grad():
            before_out = net(x)
        before = {k: v.detach().clone() for k, v in net.state_dict().items()}
        net.train(train_mode)
        for p in (bn.weight, bn.bias):
            p.requires_grad_(grads)
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        after = net.state_dict()
        net.eval()
        with torch.no_grad():
            moved = float((net(x) - before_out).abs().max())
        bn_name = next(n for n, m in net.named_modules() if m is bn)

        others = [k for k in before if not k.startswith(bn_name + ".")]
        out.append({"way": way, "gamma_beta": _changed(before, after, [f"{bn_name}.weight", f"{bn_name}.bias"]),
                    "running": _changed(before, after, [f"{bn_name}.running_mean", f"{bn_name}.running_var"]),
                    "weights": _changed(before, after, others), "output": moved})
    return out


# --------------------------------------------------------------------------- the bias before BN
def bias_cancels(seed: int = 0, batch: int = 32, features: int = 8, scale: float = 100.0) -> dict:
    """A linear layer with a bias followed by BN in training mode, float64: the largest output difference between
    the layer's bias set to random values of size ``scale`` and to zero (``out_diff``; BN subtracts the batch mean,
    which contains the bias), and the largest loss gradient with respect to the bias (``bias_grad``), against that
    with respect to the weights (``weight_grad``)."""
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(20, features, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(features, 20, generator=g, dtype=torch.float64) / 20 ** 0.5)
    bn = BatchNorm(features, dtype=torch.float64)
    x = torch.randn(batch, 20, generator=g, dtype=torch.float64)
    w = torch.randn(batch, features, generator=g, dtype=torch.float64)
    with torch.no_grad():
        lin.bias.copy_(scale * torch.randn(features, generator=g, dtype=torch.float64))
    (bn(lin(x)) * w).sum().backward()
    with torch.no_grad():
        with_bias = bn(lin(x))
        lin.bias.zero_()
        without = bn(lin(x))
    return {"out_diff": float((with_bias - without).abs().max()), "bias_grad": float(lin.bias.grad.abs().max()),
            "weight_grad": float(lin.weight.grad.abs().max()), "scale": scale}


# --------------------------------------------------------------------------- statistics on a shifted domain
#: The shifted domains of :func:`adaptation_check`: the contrast halved and the brightness raised (an affine
#: change of every pixel, x -> 0.25 + 0.5 x), additive Gaussian noise of standard deviation 0.3, and the image
#: inverted (x -> 1 - x). Fixed before the check was first run.
SHIFTS = ("contrast", "noise", "inverted")
#: How many unlabelled images of the shifted domain the statistics are re-estimated from.
ADAPT_SIZES = (1, 8, 32, 256)
#: The prior strengths N of Schneider et al. (2020): the re-estimated statistics are (N * source + n * target) /
#: (N + n); N = 0 takes the target's statistics alone.
ADAPT_PRIORS = (0, 16)
#: The source network of the check: the MNIST chapter's network (784-100-100-100-10, sigmoid, BN before each
#: nonlinearity, N(0, 0.1^2) weights, pixels in [0, 1]), trained by plain SGD at rate 1.0 on batches of 60.
SOURCE_SIZES = (784, 100, 100, 100, 10)


def shift_images(x: torch.Tensor, shift: str, seed: int = 0) -> torch.Tensor:
    """Images ``x`` (pixels in [0, 1]) moved to the domain ``shift`` of :data:`SHIFTS` (the noise drawn from
    ``seed``)."""
    if shift == "contrast":
        return 0.25 + 0.5 * x
    if shift == "noise":
        return x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    if shift == "inverted":
        return 1 - x
    raise ValueError(f"shift must be one of {', '.join(SHIFTS)}, got {shift!r}.")


def estimate_statistics(net: nn.Module, x: torch.Tensor, prior: float = 0) -> None:
    """Set the running statistics of every BN layer of ``net`` from the inputs ``x``, layer after layer (each
    layer's inputs computed with the statistics already set for the layers before it, as Algorithm 2 of Ioffe and
    Szegedy does), mixed with the current ones as Schneider et al. (2020): ``(prior * current + n * new) / (prior
    + n)`` for ``n`` images (the variance of the new ones without Bessel's correction, so that one image is
    allowed; with ``prior = 0`` it is then zero). Leaves ``net`` in eval mode."""
    if len(x) < 1 or prior < 0:
        raise ValueError(f"statistics need at least one image and a prior >= 0, got {len(x)} images and {prior}.")
    net.eval()
    n = len(x)
    for bn in models.bn_layers(net):
        seen: list[torch.Tensor] = []
        hook = bn.register_forward_pre_hook(lambda _m, inp, seen=seen: seen.append(inp[0].detach()))
        with torch.no_grad():
            net(x)
        hook.remove()
        z = seen[0].transpose(0, 1).reshape(seen[0].shape[1], -1)
        mean, var = z.mean(1), z.var(1, correction=0)
        with torch.no_grad():
            bn.running_mean.copy_((prior * bn.running_mean + n * mean) / (prior + n))
            bn.running_var.copy_((prior * bn.running_var + n * var) / (prior + n))


def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    with torch.no_grad():
        return float((net(x).argmax(1) == y).float().mean())


def _train(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, steps: int, seed: int,
           batch: int, frozen=()) -> None:
    """``steps`` steps of ``opt`` on the cross-entropy of random batches of ``(x, y)`` (drawn from ``seed``), in
    training mode but for the BN layers ``frozen``, kept in inference mode."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        net.train()
        for b in frozen:
            b.eval()  # inference mode: the stored statistics, no running update
        idx = torch.randint(0, len(x), (batch,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
        opt.step()


def _random_network(seed: int, norm: str = "torch") -> nn.Module:
    """:data:`SOURCE_SIZES` with BN (or another ``norm`` of :class:`bnlib.models.SigmoidMLP`), initialized from
    ``seed`` as the MNIST chapter's network."""
    torch.manual_seed(seed)
    net = models.SigmoidMLP(SOURCE_SIZES, norm=norm)
    models.init_weights(net, "gaussian", sigma=0.1, seed=seed)
    return net


def _source_network(x: torch.Tensor, y: torch.Tensor, seed: int, steps: int) -> nn.Module:
    net = _random_network(seed)
    _train(net, torch.optim.SGD(net.parameters(), lr=1.0), x, y, steps, seed, batch=60)
    return net


def source_networks(x_train: torch.Tensor, y_train: torch.Tensor, seeds=range(5), steps: int = 1000,
                    n_source: int = 50_000) -> dict[int, dict]:
    """Per seed, the state of the source network of the shifted-domain checks: :data:`SOURCE_SIZES` trained
    ``steps`` steps on the first ``n_source`` training images, its statistics estimated over 10,000 of them."""
    out = {}
    with one_thread():
        for seed in seeds:
            net = _source_network(x_train[:n_source], y_train[:n_source], seed, steps)
            estimate_statistics(net, x_train[:10_000])
            out[seed] = {k: v.clone() for k, v in net.state_dict().items()}
    return out


def adaptation_check(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                     seeds=range(5), steps: int = 1000, n_source: int = 50_000, sizes=ADAPT_SIZES,
                     priors=ADAPT_PRIORS, sources: dict[int, dict] | None = None) -> dict:
    """Test-time adaptation of BN (Schneider et al., 2020), per seed: a source network (:data:`SOURCE_SIZES`)
    trained ``steps`` steps on the first ``n_source`` training images (flattened MNIST, pixels in [0, 1]), its
    statistics estimated over 10,000 of them; then, for each shift of :data:`SHIFTS`, its accuracy on the shifted
    test set with the source statistics, with statistics re-estimated from ``n`` unlabelled shifted images of the
    held-out training images (a random draw per seed) for each ``n`` of ``sizes`` and prior of ``priors``, and from
    all of them. ``sources``: the networks of :func:`source_networks` with these arguments, when already trained.
    Returns ``{"clean", "source", "adapted", "all", ...}`` with one accuracy per seed; ``adapted[shift][str(prior)]
    [str(n)]`` (keys are strings, as they read back from JSON)."""
    if n_source >= len(x_train):
        raise ValueError(f"n_source must leave held-out training images for adaptation, got {n_source} of "
                         f"{len(x_train)}.")
    seeds = list(seeds)
    out: dict = {"seeds": seeds, "steps": steps, "sizes": list(sizes), "priors": list(priors), "shifts": list(SHIFTS),
                 "n_pool": len(x_train) - n_source, "clean": [], "source": {s: [] for s in SHIFTS},
                 "all": {s: [] for s in SHIFTS},
                 "adapted": {s: {str(p): {str(n): [] for n in sizes} for p in priors} for s in SHIFTS}}
    tests = {s: shift_images(x_test, s, seed=10_000) for s in SHIFTS}
    pools = {s: shift_images(x_train[n_source:], s, seed=20_000) for s in SHIFTS}
    sources = sources if sources is not None else source_networks(x_train, y_train, seeds, steps, n_source)
    with one_thread():
        for seed in seeds:
            source = sources[seed]
            net = models.SigmoidMLP(SOURCE_SIZES, norm="torch")
            net.load_state_dict(source)
            out["clean"].append(_accuracy(net, x_test, y_test))
            order = torch.randperm(out["n_pool"], generator=torch.Generator().manual_seed(seed))
            for s in SHIFTS:
                out["source"][s].append(_accuracy(net, tests[s], y_test))
                for p in priors:
                    for n in sizes:
                        net.load_state_dict(source)
                        estimate_statistics(net, pools[s][order[:n]], prior=p)
                        out["adapted"][s][str(p)][str(n)].append(_accuracy(net, tests[s], y_test))
                net.load_state_dict(source)
                estimate_statistics(net, pools[s])
                out["all"][s].append(_accuracy(net, tests[s], y_test))
                net.load_state_dict(source)
    return out


def shifted_domain_mnist(seeds=range(5)) -> dict:
    """The practice chapter's two shifted-domain checks on flattened MNIST (pixels in [0, 1]), from one set of
    source networks (:func:`source_networks`): ``{"adapt": adaptation_check(...), "finetune": finetune_check(...)}``
    with their default settings; what the practice chapter and the claims ledger read back as a stored check."""
    (x_train, x_test), (y_train, y_test) = _mnist_unit()
    seeds = list(seeds)
    sources = source_networks(x_train, y_train, seeds)
    return {"adapt": adaptation_check(x_train, y_train, x_test, y_test, seeds, sources=sources),
            "finetune": finetune_check(x_train, y_train, x_test, y_test, seeds, sources=sources)}


# --------------------------------------------------------------------------- gamma and beta alone
#: What :func:`affine_only_check` trains, each from the same random network and batches: only BN's gamma and beta
#: (``"bn"``), as many randomly chosen weights of the linear layers (``"random"``, Frankle et al.'s control), and
#: only the output layer (``"last"``: a linear classifier on random features).
AFFINE_WAYS = ("bn", "random", "last")
#: ``|gamma|`` below this counts as a feature switched off.
GAMMA_OFF = 0.05


def _trainable(net: nn.Module, way: str, seed: int) -> list[torch.Tensor]:
    """Freeze every parameter of ``net`` but those ``way`` trains; returns them (for "random", the weights whose
    gradients are masked to as many chosen entries as BN has parameters)."""
    bns, lins = models.bn_layers(net), [m for m in net.modules() if isinstance(m, nn.Linear)]
    for p in net.parameters():
        p.requires_grad_(False)
    if way == "bn":
        params = [p for b in bns for p in (b.weight, b.bias)]
    elif way == "last":
        params = list(lins[-1].parameters())
    elif way == "random":
        k = sum(2 * b.num_features for b in bns)
        sizes = [m.weight.numel() for m in lins]
        chosen = torch.zeros(sum(sizes))
        chosen[torch.randperm(sum(sizes), generator=torch.Generator().manual_seed(10_000 + seed))[:k]] = 1
        params = []
        for m, part in zip(lins, chosen.split(sizes), strict=True):
            mask = part.view_as(m.weight)
            m.weight.requires_grad_(True)
            m.weight.register_hook(lambda grad, mask=mask: grad * mask)
            params.append(m.weight)
    else:
        raise ValueError(f"way must be one of {', '.join(AFFINE_WAYS)}, got {way!r}.")
    for p in params:
        p.requires_grad_(True)
    return params


def affine_only_check(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                      seeds=range(5), steps: int = 1000, ways=AFFINE_WAYS, lr: float = 0.01) -> dict:
    """Frankle et al. (2021) on the MNIST network of :data:`SOURCE_SIZES` (flattened images, pixels in [0, 1]):
    per seed and way of :data:`AFFINE_WAYS`, the same randomly initialized network trained ``steps`` steps of 60
    images with Adam at ``lr``, only in the parameters that way names; scored on the test set with population
    statistics over 10,000 training images. Returns, per way, the test accuracies and the number of trained values,
    and for ``"bn"`` the fraction of gammas below :data:`GAMMA_OFF` in absolute value at the end."""
    out: dict = {"seeds": list(seeds), "steps": steps, "ways": list(ways), "acc": {w: [] for w in ways},
                 "trained": {}, "off": [], "gamma_off": GAMMA_OFF}
    with one_thread():
        for seed in out["seeds"]:
            for way in ways:
                net = _random_network(seed)
                params = _trainable(net, way, seed)
                out["trained"][way] = sum(p.numel() for p in params) if way != "random" else \
                    sum(2 * b.num_features for b in models.bn_layers(net))
                _train(net, torch.optim.Adam(params, lr=lr), x_train, y_train, steps, seed, batch=60)
                estimate_statistics(net, x_train[:10_000])
                out["acc"][way].append(_accuracy(net, x_test, y_test))
                if way == "bn":
                    gamma = torch.cat([b.weight.detach().abs() for b in models.bn_layers(net)])
                    out["off"].append(float((gamma < GAMMA_OFF).float().mean()))
    return out


def affine_only_mnist(seeds=range(5), steps: int = 1000, ways=AFFINE_WAYS, lr: float = 0.01) -> dict:
    """:func:`affine_only_check` on flattened MNIST (pixels in [0, 1]): trained on the first 50,000 training
    images, scored on the test set; what the practice chapter and the claims ledger read back as a stored check."""
    (x_train, x_test), (y_train, y_test) = _mnist_unit()
    return affine_only_check(x_train[:50_000], y_train[:50_000], x_test, y_test, seeds, steps, tuple(ways), lr)


# --------------------------------------------------------------------------- fine-tuning with BN frozen or not
#: How :func:`finetune_check` treats the BN layers while the rest of the network is fine-tuned: not fine-tuned at
#: all (``"none"``), BN updated as in training (``"updated"``: batch statistics, running averages, gamma and beta
#: trained), frozen in inference mode with gamma and beta fixed (``"frozen"``, Keras's ``trainable = False``), and
#: its statistics first re-estimated on the new images, then frozen (``"re-estimated"``).
FINETUNE_MODES = ("none", "updated", "frozen", "re-estimated")


def _finetuned(source: dict, x: torch.Tensor, y: torch.Tensor, mode: str, steps: int, lr: float,
               seed: int) -> nn.Module:
    net = models.SigmoidMLP(SOURCE_SIZES, norm="torch")
    net.load_state_dict(source)
    if mode == "none":
        return net.eval()
    if mode not in FINETUNE_MODES:
        raise ValueError(f"mode must be one of {', '.join(FINETUNE_MODES)}, got {mode!r}.")
    bns = models.bn_layers(net)
    if mode == "re-estimated":
        estimate_statistics(net, x)
    if mode != "updated":
        for b in bns:
            b.weight.requires_grad_(False)
            b.bias.requires_grad_(False)
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=lr)
    _train(net, opt, x, y, steps, seed, batch=32, frozen=() if mode == "updated" else bns)
    return net.eval()


def finetune_check(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                   seeds=range(5), source_steps: int = 1000, n_source: int = 50_000, n_labelled: int = 256,
                   steps: int = 300, lr: float = 0.1, shifts=("noise", "inverted"),
                   sources: dict[int, dict] | None = None) -> dict:
    """Fine-tuning the source network of :func:`adaptation_check` (same seeds, so the same networks) on
    ``n_labelled`` labelled images of a shifted domain (drawn per seed from the held-out training images), ``steps``
    steps of SGD on batches of 32 at ``lr``, with its BN layers treated in each way of :data:`FINETUNE_MODES`;
    scored in eval mode on the shifted test set (``sources`` as in :func:`adaptation_check`). Returns per shift
    and mode the accuracies, one per seed."""
    out: dict = {"seeds": list(seeds), "n_labelled": n_labelled, "steps": steps, "lr": lr, "shifts": list(shifts),
                 "modes": list(FINETUNE_MODES), "acc": {s: {m: [] for m in FINETUNE_MODES} for s in shifts}}
    sources = sources if sources is not None else source_networks(x_train, y_train, seeds, source_steps, n_source)
    with one_thread():
        for seed in out["seeds"]:
            source = sources[seed]
            pick = n_source + torch.randperm(len(x_train) - n_source,
                                             generator=torch.Generator().manual_seed(seed))[:n_labelled]
            for s in shifts:
                x = shift_images(x_train[pick], s, seed=30_000 + seed)
                test = shift_images(x_test, s, seed=10_000)
                for mode in FINETUNE_MODES:
                    tuned = _finetuned(source, x, y_train[pick], mode, steps, lr, seed)
                    out["acc"][s][mode].append(_accuracy(tuned, test, y_test))
    return out


# --------------------------------------------------------------------------- the per-device batch
#: Devices of the data-parallel checks, and the examples each holds of a batch in :func:`device_batch_check`.
DEVICES = 2
PER_DEVICE = (2, 4, 8)
#: How the networks of :func:`device_batch_check` normalize: BN over each device's own examples (``"local"``, what
#: ``DistributedDataParallel`` gives a network with ``torch.nn.BatchNorm1d``), BN over every device's examples
#: (``"sync"``: SyncBN, which :func:`shard_check` shows equals BN over the global batch in one process), and Group
#: Norm (``"group"``, which normalizes each example on its own).
DEVICE_NORMS = ("local", "sync", "group")
#: Ghost BN (Hoffer et al., 2017): one large batch, normalized over virtual sub-batches of these sizes (the
#: largest: plain BN).
GHOST_BATCH = 256
GHOST_SIZES = (256, 32, 8)
#: The rate at batch 60 (the MNIST chapter's), scaled linearly with the global batch.
RATE_AT_60 = 1.0


def ghost_forward(net: nn.Module, x: torch.Tensor, virtual: int) -> torch.Tensor:
    """``net`` on ``x`` in consecutive chunks of ``virtual`` examples, the outputs concatenated. In a fully
    connected network every layer but BN acts example by example, so this is BN over each chunk: what
    ``len(x) // virtual`` devices with local BN compute on their shards, and ghost BN with virtual batch
    ``virtual``."""
    if not isinstance(virtual, int) or isinstance(virtual, bool) or virtual < 1 or len(x) % virtual:
        raise ValueError(f"virtual must be a positive integer that divides the batch of {len(x)} examples, got "
                         f"{virtual!r}.")
    return net(x) if virtual == len(x) else torch.cat([net(c) for c in x.split(virtual)])


def _ddp_batch(step: int, seed: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5000 + 1000 * seed + step)
    return torch.rand((size, SOURCE_SIZES[0]), generator=g, dtype=torch.float64), \
        torch.randint(0, SOURCE_SIZES[-1], (size,), generator=g)


def _ddp_network(seed: int) -> nn.Module:
    return _random_network(seed).double()


def _ddp_steps(net: nn.Module, forward, per_device: int, steps: int, seed: int, lo: int, hi: int,
               lr: float) -> dict[str, torch.Tensor]:
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    net.train()
    for step in range(steps):
        x, y = _ddp_batch(step, seed, DEVICES * per_device)
        opt.zero_grad()
        nn.functional.cross_entropy(forward(x[lo:hi]), y[lo:hi]).backward()
        opt.step()
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def _ddp_worker(rank: int, port: int, folder: str, world: int, per_device: int, steps: int, seed: int,
                lr: float) -> None:
    with _in_group(rank, port, world):
        lo, hi = rank * per_device, (rank + 1) * per_device
        out = {}
        for mode in ("local", "sync"):
            net = _ddp_network(seed)
            if mode == "sync":
                net = convert_sync_batchnorm(net)
            ddp = nn.parallel.DistributedDataParallel(net)
            params = _ddp_steps(ddp, ddp, per_device, steps, seed, lo, hi, lr)
            out[mode] = {k.removeprefix("module."): v for k, v in params.items()}
        _save(out, folder, rank)


def ddp_check(per_device: int = 4, steps: int = 2, seed: int = 0, lr: float = 0.5) -> dict:
    """Data-parallel training of the MNIST network with BN (float64, :data:`SOURCE_SIZES`) in :data:`DEVICES`
    processes (``DistributedDataParallel``, a gloo group on 127.0.0.1), each holding ``per_device`` examples of
    each random batch, ``steps`` steps of SGD at ``lr``: once with ``torch.nn.BatchNorm1d`` (local BN) and once
    converted to :class:`bnlib.distributed.SyncBatchNorm`. Returns the largest absolute difference of the final
    parameters from training in this process on the whole batch: ``local_ghost`` (local BN against
    :func:`ghost_forward` with virtual batch ``per_device``), ``sync_global`` (SyncBN against BN over the whole
    batch) and ``local_global`` (local BN against BN over the whole batch: how far apart the two are)."""
    ranks = _spawn(_ddp_worker, DEVICES, per_device, steps, seed, lr)
    everything = (0, DEVICES * per_device)
    with one_thread():
        net = _ddp_network(seed)
        ghost = _ddp_steps(net, lambda x: ghost_forward(net, x, per_device), per_device, steps, seed, *everything, lr)
        net = _ddp_network(seed)
        whole = _ddp_steps(net, net, per_device, steps, seed, *everything, lr)

    def gap(a: dict, b: dict) -> float:
        return max(float((a[k] - b[k]).abs().max()) for k in b)

    return {"devices": DEVICES, "per_device": per_device, "steps": steps,
            "ranks_agree": max(gap(r[m], ranks[0][m]) for r in ranks for m in ("local", "sync")),
            "local_ghost": gap(ranks[0]["local"], ghost), "sync_global": gap(ranks[0]["sync"], whole),
            "local_global": gap(ranks[0]["local"], whole)}


def _device_network(norm: str, seed: int) -> nn.Module:
    return _random_network(seed, "group" if norm == "group" else "torch")


def _ghost_trained(x: torch.Tensor, y: torch.Tensor, norm: str, batch: int, virtual: int, examples: int,
                   seed: int, shards: int = 1) -> nn.Module:
    """``norm``'s network trained on random batches of ``batch`` examples, run by :func:`ghost_forward` in chunks of
    ``virtual``; the loss is the mean over ``shards`` equal parts of the batch of each part's mean cross-entropy,
    as data-parallel training over ``shards`` devices averages the devices' gradients (so that, with ``virtual``
    the part's size, the arithmetic is that of :func:`ddp_train_check`, rounding included)."""
    if batch % shards:
        raise ValueError(f"batch must split into {shards} equal shards (one per device), got batch={batch}.")
    net = _device_network(norm, seed)
    opt = torch.optim.SGD(net.parameters(), lr=RATE_AT_60 * batch / 60)
    g = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(examples // batch):
        idx = torch.randint(0, len(x), (batch,), generator=g)
        opt.zero_grad()
        out, part = ghost_forward(net, x[idx], virtual), batch // shards
        loss = sum(nn.functional.cross_entropy(o, t) for o, t in zip(out.split(part), y[idx].split(part),
                                                                       strict=True)) / shards
        loss.backward()
        opt.step()
    return net


def device_batch_check(seeds=range(5), per_device=PER_DEVICE, examples: int = 30_000, n_train: int = 50_000) -> dict:
    """The per-device batch problem, per seed, on flattened MNIST (pixels in [0, 1]): the network of
    :data:`SOURCE_SIZES`, initialized as the MNIST chapter's, trained on ``examples`` random examples of the first
    ``n_train`` training images by SGD at :data:`RATE_AT_60` scaled with the global batch, with each device of
    :data:`DEVICES` holding ``b`` examples of a batch for each ``b`` of ``per_device``, normalized in each way of
    :data:`DEVICE_NORMS`; and ghost BN, batches of :data:`GHOST_BATCH` normalized over virtual batches of each size
    of :data:`GHOST_SIZES`. Data-parallel training is computed in one process, as :func:`ddp_check` shows it may be
    (local BN and Group Norm: :func:`ghost_forward` over the shards, the loss averaged over them as the devices'
    gradients are; :func:`ddp_train_check` trains seed 0 with ``DistributedDataParallel`` itself). Scored on the
    test set, BN networks with population statistics over 10,000 training images. Returns ``{"acc": {norm:
    {str(b): [...]}}, "ghost": {str(size): [...]}}``, one accuracy per seed (keys are strings, as they read back
    from JSON), and the setting."""
    bdata_x, bdata_y = _mnist_unit()
    x, y, x_test, y_test = bdata_x[0][:n_train], bdata_y[0][:n_train], bdata_x[1], bdata_y[1]
    seeds, per_device = list(seeds), list(per_device)
    out: dict = {"seeds": seeds, "devices": DEVICES, "per_device": per_device, "norms": list(DEVICE_NORMS),
                 "examples": examples, "n_train": n_train, "rate_at_60": RATE_AT_60, "ghost_batch": GHOST_BATCH,
                 "ghost_sizes": list(GHOST_SIZES), "acc": {n: {str(b): [] for b in per_device} for n in DEVICE_NORMS},
                 "ghost": {str(v): [] for v in GHOST_SIZES}}

    def score(net: nn.Module, norm: str) -> float:
        return _device_score(net, norm, bdata_x[0], x_test, y_test)

    with one_thread():
        for seed in seeds:
            for b in per_device:
                batch = DEVICES * b
                for norm in DEVICE_NORMS:
                    net = _ghost_trained(x, y, norm, batch, batch if norm == "sync" else b, examples, seed, DEVICES)
                    out["acc"][norm][str(b)].append(score(net, norm))
            for v in GHOST_SIZES:
                out["ghost"][str(v)].append(score(_ghost_trained(x, y, "bn", GHOST_BATCH, v, examples, seed), "bn"))
    return out


def _device_score(net: nn.Module, norm: str, x_train: torch.Tensor, x_test: torch.Tensor,
                  y_test: torch.Tensor) -> float:
    """Test accuracy, BN networks with population statistics over the first 10,000 training images."""
    if norm != "group":
        estimate_statistics(net, x_train[:10_000])
    return _accuracy(net, x_test, y_test)


def _ddp_train_worker(rank: int, port: int, folder: str, world: int, per_device: tuple[int, ...], seed: int,
                      examples: int, n_train: int) -> None:
    with _in_group(rank, port, world):
        (x_all, x_test), (y_all, y_test) = _mnist_unit()
        x, y = x_all[:n_train], y_all[:n_train]
        out = {}
        for b in per_device:
            batch = world * b
            for norm in DEVICE_NORMS:
                net = _device_network(norm, seed)
                if norm == "sync":
                    net = convert_sync_batchnorm(net)
                ddp = nn.parallel.DistributedDataParallel(net)
                opt = torch.optim.SGD(ddp.parameters(), lr=RATE_AT_60 * batch / 60)
                g = torch.Generator().manual_seed(seed)  # the batches of _ghost_trained, this rank's share of each
                ddp.train()
                for _ in range(examples // batch):
                    idx = torch.randint(0, len(x), (batch,), generator=g)[rank * b:(rank + 1) * b]
                    opt.zero_grad()
                    nn.functional.cross_entropy(ddp(x[idx]), y[idx]).backward()
                    opt.step()
                out[f"{norm}-{b}"] = _device_score(net, norm, x_all, x_test, y_test)
        _save(out, folder, rank)


def ddp_train_check(per_device=PER_DEVICE, seed: int = 0, examples: int = 30_000, n_train: int = 50_000) -> dict:
    """:func:`device_batch_check`'s networks for one seed, trained for real with ``DistributedDataParallel`` in
    :data:`DEVICES` processes (a gloo group on 127.0.0.1, one thread each), each process holding its ``b`` examples
    of every batch: local BN (``torch.nn.BatchNorm1d`` in each process), SyncBN (converted to
    :class:`bnlib.distributed.SyncBatchNorm`) and Group Norm, scored as :func:`device_batch_check` scores them.
    Returns ``{"acc": {norm: {str(b): accuracy}}}`` (the first process's; keys are strings, as they read back from
    JSON), whether the processes agree exactly (``ranks_agree``), and the setting."""
    per_device = list(per_device)
    ranks = _spawn(_ddp_train_worker, DEVICES, tuple(per_device), seed, examples, n_train)
    return {"seed": seed, "devices": DEVICES, "per_device": per_device, "examples": examples, "n_train": n_train,
            "ranks_agree": all(r == ranks[0] for r in ranks),
            "acc": {n: {str(b): ranks[0][f"{n}-{b}"] for b in per_device} for n in DEVICE_NORMS}}


def _mnist_unit() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Flattened MNIST as float32 tensors with pixels in [0, 1]: ``(x_train, x_test), (y_train, y_test)``."""
    (xtr, ytr), (xte, yte) = bdata.load_mnist()
    (a, ya), (b, yb) = (bdata.to_tensors(xtr, ytr, "mnist", flatten=True, normalize=False),
                        bdata.to_tensors(xte, yte, "mnist", flatten=True, normalize=False))
    return (a, b), (ya, yb)
