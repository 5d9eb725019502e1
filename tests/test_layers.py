"""Imports run one way: core <- integrations <- instance (bridge, workers) <- fleet.

Read from the source with ast, so a new import against the grain fails here rather
than in a review. Test equipment (erp_sim, erp_tryton) imports nothing of the product,
and the product imports no test equipment.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("core", "integrations", "bridge", "workers", "fleet", "erp_sim", "erp_tryton")

#: package -> the project packages it may import
ALLOWED = {
    "core": {"core"},
    "integrations": {"core", "integrations"},
    # the instance: records, queue, API; it picks an integration through the interface
    "bridge": {"core", "integrations", "bridge", "workers"},
    "workers": {"core", "integrations", "bridge", "workers"},
    # the fleet: core, the instance's settings and sealing, and the ERPs' option
    # declarations (integrations.AVAILABLE, options_of: no browser code)
    "fleet": {"core", "bridge", "integrations", "fleet"},
    "erp_sim": {"erp_sim"},
    "erp_tryton": {"erp_tryton"},
}


def project_imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in PACKAGES:
                yield node.lineno, name


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_run_one_way(package):
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, name in project_imports(path):
            if name.split(".")[0] not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not wrong, "\n".join(wrong)


#: what the instance may know of integrations: the interface, and where a failure's
#: artifacts are written (the instance serves them to operators). Nothing of the
#: browser: when a browser is kept or given back is integrations/browser/life.py's business
INTERFACE = {"integrations.base", "integrations.artifacts"}


def test_the_bridge_uses_only_the_integration_interface():
    """The instance knows integrations by name and interface, never one ERP's code."""
    wrong = []
    for package in ("bridge", "workers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, name in project_imports(path):
                if name.startswith("integrations.") and name not in INTERFACE:
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not wrong, "\n".join(wrong)
