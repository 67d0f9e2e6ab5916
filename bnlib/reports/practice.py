"""The numbers of book/practice.ipynb, from what :mod:`bnlib.practice` computes (dicts of plain numbers): the
shard check of SyncBatchNorm, the freezing table and the bias before BN."""

from __future__ import annotations

from bnlib.reports.format import Glued, Table, number, power_bound, text

#: Errors at float64 rounding differ from one CPU to another: shown no finer than this.
FLOOR = 1e-13


def shard_numbers(r: dict) -> dict[str, Glued]:
    """:func:`bnlib.practice.shard_check`'s result: the split, and each difference as the power of ten above it."""
    split = r["split"]
    out = {"pr_sync_procs": number(r["processes"]), "pr_sync_steps": number(r["steps"]),
           "pr_sync_split": text(" and ".join(str(k) for k in split)), "pr_sync_total": number(sum(split)),
           "pr_sync_local": number(r["local"], 2)}
    out |= {f"pr_sync_{k}": text(power_bound(r[k], FLOOR)) for k in ("out", "dx", "dparams", "running")}
    return out


def freezing_table(rows: list[dict]) -> Table:
    """One line per way of :func:`bnlib.practice.freezing_check`: what one SGD step changed."""
    yes = {True: "changed", False: "frozen"}
    return Table(["during the step", "gamma, beta", "running statistics", "other weights", "eval output moved by"],
                 [[r["way"], yes[r["gamma_beta"]], yes[r["running"]], yes[r["weights"]], f"{r['output']:.2f}"]
                  for r in rows])


def freezing_numbers(rows: list[dict]) -> dict[str, Glued]:
    """Which ways freeze what, in words, for the prose; raises ValueError when torch no longer behaves as the prose
    says (eval mode stops the running statistics only, ``requires_grad=False`` the parameters only, and only both
    together fix the layer)."""
    by = {r["way"]: r for r in rows}
    frozen = [w for w, r in by.items() if not r["gamma_beta"] and not r["running"]]
    said = {"model.eval()": (True, False), "requires_grad=False": (False, True)}  # (gamma, beta) move, stats move
    for way, (params, running) in said.items():
        if (by[way]["gamma_beta"], by[way]["running"]) != (params, running):
            raise ValueError(f"the prose says {way} {'leaves' if params else 'stops'} gamma and beta and "
                             f"{'leaves' if running else 'stops'} the running statistics, which no longer holds.")
    if frozen != ["eval() and requires_grad=False"]:
        raise ValueError(f"the prose says only eval() with requires_grad=False fixes the layer, but {frozen} do.")
    return {"pr_freeze_eval_running": text(yes_no(not by["model.eval()"]["running"])),
            "pr_freeze_eval_params": text(yes_no(not by["model.eval()"]["gamma_beta"])),
            "pr_freeze_rg_running": text(yes_no(not by["requires_grad=False"]["running"])),
            "pr_freeze_both": text(", ".join(frozen) or "none")}


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def bias_numbers(r: dict) -> dict[str, Glued]:
    """:func:`bnlib.practice.bias_cancels`: the bias's size, the output difference and the bias gradient (bounds)."""
    return {"pr_bias_scale": number(r["scale"]), "pr_bias_out": text(power_bound(r["out_diff"], FLOOR * 10)),
            "pr_bias_grad": text(power_bound(r["bias_grad"], FLOOR * 10)),
            "pr_bias_wgrad": number(r["weight_grad"], 0)}
