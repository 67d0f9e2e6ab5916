"""The house rules of bnlib, read from its source with the ast module: every import (module level or
inside a function) goes down the layers, never up; no private torch API; no file over 700 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "bnlib"

#: Bottom to top. A module may import only modules of lower layers (and, inside reports/ or plots/,
#: its siblings as ALLOWED_SIBLINGS says).
LAYERS = [
    {"bnlib", "bnlib._checks", "bnlib.results", "bnlib.vocabulary", "bnlib.threads"},
    {"bnlib.symbolic.core"},
    {"bnlib.symbolic.forward", "bnlib.symbolic.backward"},
    {"bnlib.symbolic.scale", "bnlib.symbolic.lambdified", "bnlib.symbolic.geometry"},
    {"bnlib.functional", "bnlib.symbolic"},
    {"bnlib.nn", "bnlib.identities", "bnlib.sgd"},
    {"bnlib.norms", "bnlib.data", "bnlib.distributed"},
    {"bnlib.models"},
    {"bnlib.evaluate"},
    {"bnlib.analysis", "bnlib.geometry", "bnlib.practice", "bnlib.residual",
     "bnlib.conventions"},
    {"bnlib.train"},
    {"bnlib.engine"},
    {"bnlib.checks"},
    {"bnlib.experiments"},
    {"bnlib.reports.evidence"},
    {"bnlib.reports", "bnlib.reports.format", "bnlib.reports.rules", "bnlib.plots", "bnlib.plots.style"},
    {"bnlib.reports.cifar", "bnlib.reports.train_test", "bnlib.reports.mnist", "bnlib.reports.why",
     "bnlib.reports.derivations", "bnlib.plots.cifar", "bnlib.plots.train_test", "bnlib.plots.mnist",
     "bnlib.plots.why", "bnlib.plots.derivations", "bnlib.reports.geometry", "bnlib.plots.geometry",
     "bnlib.reports.cifar_rates", "bnlib.reports.cifar_recipe", "bnlib.reports.cifar_depth",
     "bnlib.reports.practice", "bnlib.plots.practice"},
    {"bnlib.reports.claims"},
]
#: Chapter report modules that build on another chapter's numbers (same layer, one way).
ALLOWED_SIBLINGS = {
    "bnlib.reports.mnist": {"bnlib.reports.cifar"},
    "bnlib.reports.cifar_rates": {"bnlib.reports.cifar"},
    "bnlib.reports.cifar_recipe": {"bnlib.reports.cifar"},
    "bnlib.reports.cifar_depth": {"bnlib.reports.cifar"},
    "bnlib.reports.why": {"bnlib.reports.mnist"},
}
#: What reports and plots may import at all: the results and the vocabulary, never a network.
REPORTS_MAY_IMPORT = {"bnlib.results", "bnlib.vocabulary", "bnlib.functional", "bnlib.reports"}
PLOTS_MAY_IMPORT = {"bnlib.results", "bnlib.vocabulary", "bnlib.plots"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _bnlib_imports(path: Path) -> set[str]:
    """Every bnlib module ``path`` imports, at module level or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("bnlib")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bnlib"):
            known = _sources()
            for a in node.names:  # "from bnlib import models" names a module; "from bnlib.x import f" does not
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in known else node.module)
    return out


def _layer(name: str) -> int:
    for i, layer in enumerate(LAYERS):
        if name in layer:
            return i
    raise AssertionError(f"{name} is in no layer of tests/test_layers.py: place it there")


@pytest.mark.parametrize("name", sorted(_sources()))
def test_imports_go_down_the_layers(name):
    mine = _layer(name)
    for dep in _bnlib_imports(_sources()[name]) - {name}:
        if dep in ALLOWED_SIBLINGS.get(name, set()):
            continue
        assert _layer(dep) < mine, f"{name} (layer {mine}) imports {dep} (layer {_layer(dep)}): layers go one way"


def _prefix_ok(dep: str, allowed: set[str]) -> bool:
    return any(dep == a or dep.startswith(a + ".") for a in allowed)


def test_reports_import_no_network_and_plots_no_reports():
    for name, path in _sources().items():
        deps = _bnlib_imports(path)
        if name.startswith("bnlib.reports"):
            bad = {d for d in deps if not _prefix_ok(d, REPORTS_MAY_IMPORT)}
            assert not bad, f"{name} imports {sorted(bad)}: reports read results, they never build or train a network"
        if name.startswith("bnlib.plots"):
            bad = {d for d in deps if not _prefix_ok(d, PLOTS_MAY_IMPORT)}
            assert not bad, f"{name} imports {sorted(bad)}: plots draw what reports return, they never import reports"
    assert "bnlib.train" not in _bnlib_imports(_sources()["bnlib.analysis"]), "analysis must never import train"


def test_no_private_torch_api():
    """No torch._C, no underscore attribute of a torch object: they change between torch releases."""
    for name, path in _sources().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("torch"):
                assert not any(p.startswith("_") for p in node.module.split(".")), f"{name} imports {node.module}"
            if isinstance(node, ast.Import):
                for a in node.names:
                    assert not any(p.startswith("_") for p in a.name.split(".")), f"{name} imports {a.name}"
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                root = node.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                assert not (isinstance(root, ast.Name) and root.id in ("torch", "nn")), \
                    f"{name}:{node.lineno} uses the private torch attribute {node.attr}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super" and node.args:
                assert ast.unparse(node.args[0]) != "torch.autograd.Function", f"{name}:{node.lineno} bypasses apply"


@pytest.mark.parametrize("name", sorted(_sources()))
def test_no_file_over_700_lines(name):
    n = len(_sources()[name].read_text().splitlines())
    assert n <= 700, f"{name} has {n} lines; split it (the limit is 700)"


def test_the_rules_catch_a_violation(tmp_path, monkeypatch):
    """The checks above are not vacuous: an upward import, a private torch call and a long file are caught."""
    bad = tmp_path / "bnlib"
    (bad / "reports").mkdir(parents=True)
    (bad / "__init__.py").write_text("")
    (bad / "results.py").write_text("from bnlib import train\n")
    (bad / "train.py").write_text("import torch\nx = torch._C._get_tracing_state()\n" + "pass\n" * 701)
    (bad / "reports" / "__init__.py").write_text("")
    (bad / "reports" / "cifar.py").write_text("from bnlib import models\n")
    (bad / "models.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "PKG", bad)
    with pytest.raises(AssertionError, match="layers go one way"):
        test_imports_go_down_the_layers("bnlib.results")
    with pytest.raises(AssertionError, match="never build or train"):
        test_reports_import_no_network_and_plots_no_reports()
    with pytest.raises(AssertionError, match="private torch attribute"):
        test_no_private_torch_api()
    with pytest.raises(AssertionError, match="limit is 700"):
        test_no_file_over_700_lines("bnlib.train")
