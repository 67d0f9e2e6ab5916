"""bnlib.distributed.SyncBatchNorm across real processes: two processes of a gloo process group on 127.0.0.1, each
with its shard of a batch (uneven shards included), against torch.nn.BatchNorm on one process with the whole batch
(float64): outputs, input gradients, parameter gradients (summed over the processes) and running statistics."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from bnlib.distributed import SyncBatchNorm, convert_sync_batchnorm

SHAPE = (12, 3, 4, 5)  # a batch of 12 feature maps, 3 channels
STEPS = 3  # training steps, so that the running statistics move more than once


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(step: int):
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(SHAPE, generator=g, dtype=torch.float64) * 2 + 0.5
    w = torch.randn(SHAPE, generator=g, dtype=torch.float64)  # the loss sum(y * w) weighs every output differently
    return x, w


def _worker(rank: int, world: int, port: int, split: list[int], out: str, empty: bool) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=120))
    try:
        torch.manual_seed(0)
        bn = SyncBatchNorm(SHAPE[1], momentum=0.3, dtype=torch.float64)
        with torch.no_grad():
            bn.weight.copy_(torch.tensor([1.5, -0.5, 2.0]))
            bn.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
        lo, hi = sum(split[:rank]), sum(split[:rank + 1])
        if empty:
            try:
                bn(torch.zeros((0, *SHAPE[1:]), dtype=torch.float64) if rank == 0 else _data(0)[0][:2])
            except ValueError as err:
                torch.save({"error": str(err)}, f"{out}/rank{rank}.pt")
            dist.barrier()
            return
        res = {"y": [], "dx": [], "dw": [], "db": []}
        for step in range(STEPS):
            x, w = _data(step)
            xs = x[lo:hi].clone().requires_grad_(True)
            bn.weight.grad = bn.bias.grad = None
            y = bn(xs)
            (y * w[lo:hi]).sum().backward()
            res["y"].append(y.detach())
            res["dx"].append(xs.grad)
            res["dw"].append(bn.weight.grad.clone())
            res["db"].append(bn.bias.grad.clone())
        res |= {"mean": bn.running_mean.clone(), "var": bn.running_var.clone(), "n": int(bn.num_batches_tracked)}
        bn.eval()
        res["eval"] = bn(_data(0)[0][lo:hi]).detach()
        torch.save(res, f"{out}/rank{rank}.pt")
        dist.barrier()  # no process tears the group down while another still uses it
    finally:
        dist.destroy_process_group()


def _run(tmp_path, split, empty=False):
    mp.spawn(_worker, args=(len(split), _free_port(), split, str(tmp_path), empty), nprocs=len(split), join=True)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(len(split))]


def _reference():
    """torch.nn.BatchNorm2d on one process with every example."""
    bn = torch.nn.BatchNorm2d(SHAPE[1], momentum=0.3, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.5, -0.5, 2.0]))
        bn.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
    ref = {"y": [], "dx": [], "dw": [], "db": []}
    for step in range(STEPS):
        x, w = _data(step)
        x = x.clone().requires_grad_(True)
        bn.weight.grad = bn.bias.grad = None
        y = bn(x)
        (y * w).sum().backward()
        ref["y"].append(y.detach())
        ref["dx"].append(x.grad)
        ref["dw"].append(bn.weight.grad.clone())
        ref["db"].append(bn.bias.grad.clone())
    ref |= {"mean": bn.running_mean, "var": bn.running_var, "n": int(bn.num_batches_tracked)}
    bn.eval()
    ref["eval"] = bn(_data(0)[0]).detach()
    return ref


@pytest.mark.parametrize("split", [[6, 6], [9, 3]], ids=["even", "uneven"])
def test_two_processes_compute_what_one_process_with_the_whole_batch_computes(tmp_path, split):
    ranks, ref = _run(tmp_path, split), _reference()
    bounds = [(sum(split[:r]), sum(split[:r + 1])) for r in range(len(split))]
    for step in range(STEPS):
        for key in ("y", "dx"):
            got = torch.cat([res[key][step] for res in ranks])
            torch.testing.assert_close(got, ref[key][step], rtol=0, atol=1e-10)
        for key in ("dw", "db"):  # each process holds the gradient of its own examples' loss: they add up
            torch.testing.assert_close(sum(res[key][step] for res in ranks), ref[key][step], rtol=0, atol=1e-10)
    for res, (lo, hi) in zip(ranks, bounds, strict=True):
        torch.testing.assert_close(res["mean"], ref["mean"], rtol=0, atol=1e-12)
        torch.testing.assert_close(res["var"], ref["var"], rtol=0, atol=1e-12)
        assert res["n"] == ref["n"] == STEPS
        torch.testing.assert_close(res["eval"], ref["eval"][lo:hi], rtol=0, atol=1e-12)


def test_an_empty_shard_is_refused_on_every_process_in_one_sentence(tmp_path):
    ranks = _run(tmp_path, [0, 2], empty=True)
    for res in ranks:
        assert res["error"].startswith("SyncBatchNorm got an empty batch on rank 0 of the process group")


def test_without_a_process_group_training_refuses_and_eval_needs_none():
    bn = SyncBatchNorm(3)
    with pytest.raises(RuntimeError, match="needs an initialized torch.distributed process group"):
        bn(torch.randn(4, 3))
    bn.eval()
    torch.testing.assert_close(bn(torch.ones(4, 3)), torch.ones(4, 3) / (1 + 1e-5) ** 0.5)


def test_convert_sync_batchnorm_keeps_parameters_and_statistics():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4, momentum=0.2), torch.nn.ReLU())
    with torch.no_grad():
        net[1].running_mean.fill_(0.5)
        net[1].weight.fill_(2.0)
    net.eval()
    conv = convert_sync_batchnorm(net)
    assert isinstance(conv[1], SyncBatchNorm) and not conv[1].training and conv[1].momentum == 0.2
    assert torch.equal(conv[1].running_mean, torch.full((4,), 0.5))
    assert torch.equal(conv[1].weight, torch.full((4,), 2.0))
