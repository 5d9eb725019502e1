"""fleet/bytecode.py: the project's modules compiled once before ``up`` starts the fleet."""

import importlib.util
import os
import sys

from fleet.bytecode import SOURCES, compile_sources
from fleet.settings import ROOT


def _tree(root):
    (root / "core").mkdir()
    (root / "core" / "a.py").write_text("VALUE = 1\n")
    (root / "api.py").write_text("import core.a\n")
    return [root / "api.py", root / "core" / "a.py"]


def test_it_writes_the_cache_even_where_python_may_not(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # as on our build machines
    files = _tree(tmp_path)
    assert compile_sources(sys.executable, tmp_path, sources=("api.py", "core")) is None
    for source in files:
        assert os.path.isfile(importlib.util.cache_from_source(str(source))), source


def test_a_module_that_does_not_compile_is_a_reason_not_an_error(tmp_path):
    _tree(tmp_path)
    (tmp_path / "core" / "broken.py").write_text("def (:\n")
    reason = compile_sources(sys.executable, tmp_path, sources=("api.py", "core"))
    assert "could not write every module's bytecode" in reason and str(tmp_path) in reason


def test_a_missing_interpreter_is_a_reason(tmp_path):
    reason = compile_sources(str(tmp_path / "no-python"), tmp_path)
    assert reason.startswith("cannot run ") and "no-python" in reason


def test_the_sources_are_the_project_s_own():
    for name in SOURCES:  # a renamed package would otherwise silently go uncompiled
        assert os.path.exists(os.path.join(ROOT, name)), name
