"""Imports run one way: core <- integrations, orders <- workers <- service <- fleet.

Read from the source with ast, so a new import against the grain fails here rather
than in a review; an import inside a function counts as much as one at the top. The
worker never imports the instance's service (``service``); the service imports the
worker in one place, the module that wires an instance together. Test equipment
(erp_sim, erp_tryton) imports nothing of the product, the product imports no test
equipment, and no module of the whole tree (scripts and bench/ included) is part of an
import circle.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("core", "integrations", "orders", "workers", "service", "fleet", "erp_sim",
            "erp_tryton", "bench", "tests")
#: the top-level scripts: the two commands and the command-line client
SCRIPTS = ("api.py", "manage.py", "create_client.py")

#: package (or script) -> the project packages it may import
ALLOWED = {
    "core": {"core"},
    "integrations": {"core", "integrations"},
    # the orders on disk: records, status, queue, events
    "orders": {"core", "orders"},
    # the worker: the orders, and an ERP through the integration interface
    "workers": {"core", "integrations", "orders", "workers"},
    # the instance's service: HTTP API, intake, settings, metrics, webhooks, the wiring
    "service": {"core", "integrations", "orders", "workers", "service"},
    # the fleet: core, the instance's settings and sealing, the orders' status, and the
    # ERPs' option declarations (integrations.AVAILABLE, options_of: no browser code)
    "fleet": {"core", "orders", "service", "integrations", "fleet"},
    "erp_sim": {"erp_sim"},
    "erp_tryton": {"erp_tryton"},
    "api.py": {"core", "integrations", "service"},
    "manage.py": {"fleet"},
    "create_client.py": set(),
}
#: the one module of the service that imports the worker: it wires an instance together
WIRING = "service/instance.py"


def project_imports(path):
    """``(line, module name)`` of every import of the project's own code in ``path``; a
    ``from package import name`` gives ``package.name`` (a submodule, or a name of the
    package itself)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in PACKAGES or f"{top}.py" in SCRIPTS:
                yield node.lineno, name


def sources(part):
    return [ROOT / part] if part.endswith(".py") else sorted((ROOT / part).rglob("*.py"))


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_imports_run_one_way(part):
    wrong = []
    for path in sources(part):
        for line, name in project_imports(path):
            if name.split(".")[0] not in ALLOWED[part]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_worker_never_imports_the_service_and_the_service_only_wires_it():
    wrong = []
    for path in sources("service"):
        for line, name in project_imports(path):
            if name.startswith("workers") and str(path.relative_to(ROOT)) != WIRING:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    for path in sources("workers"):
        wrong += [f"{path.relative_to(ROOT)}:{line} imports {name}"
                  for line, name in project_imports(path) if name.startswith("service")]
    assert not wrong, "\n".join(wrong)


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph():
    """``{module: {module it imports, ...}}`` over every source file but the tests.

    ``from package import name`` is an import of the package (its ``__init__`` runs)
    and of ``package.name`` when that is a module."""
    paths = [p for part in (*PACKAGES, *SCRIPTS) if part != "tests" for p in sources(part)]
    modules = {module_name(path): path for path in paths}

    def resolve(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        graph[module] = set()
        for _, name in project_imports(path):
            for target in (resolve(name), resolve(name.rpartition(".")[0])):
                if target and target != module:
                    graph[module].add(target)
    return graph


def circles(graph):
    """The strongly connected components of more than one module (Tarjan's)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_anywhere():
    assert circles(import_graph()) == []


def test_the_circle_finder_finds_a_circle():
    # what the test above relies on, on a graph with a package that imports its module
    graph = {"pkg": {"pkg.flow"}, "pkg.flow": {"pkg.pages", "pkg"}, "pkg.pages": set(),
             "other": {"pkg.pages"}}
    assert circles(graph) == [["pkg", "pkg.flow"]]


#: what the instance may know of integrations: the interface, and where a failure's
#: artifacts are written (the instance serves them to operators). Nothing of the
#: browser: when a browser is kept or given back is integrations/browser/life.py's business
INTERFACE = {"integrations.base", "integrations.artifacts",
             # the registry: an ERP by its name (integrations/__init__.py)
             "integrations.AVAILABLE", "integrations.options_of",
             "integrations.get_integration_class"}


def test_the_service_uses_only_the_integration_interface():
    """The instance knows integrations by name and interface, never one ERP's code."""
    wrong = []
    for package in ("service", "workers"):
        for path in sources(package):
            for line, name in project_imports(path):
                if name.startswith("integrations.") and not any(
                        name == allowed or name.startswith(allowed + ".") for allowed in INTERFACE):
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not wrong, "\n".join(wrong)
