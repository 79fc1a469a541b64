"""The house rules the folders promise (docs/architecture.md): layers import only downward, no import cycle
(function-level imports included), one module at the root, no source file over 800 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rollover", "cards", "handlers", "fakes")
MAX_LINES = 800


def _modules() -> dict[str, Path]:
    modules = {"bot": ROOT / "bot.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(path: Path, module: str) -> set[str]:
    """Every module this one imports, anywhere in it (inside functions and TYPE_CHECKING blocks too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def _edges() -> dict[str, set[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for name in _imports(path, module):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            while name:                           # importing a.b.c runs a/__init__.py and a/b/__init__.py too
                if name != module and not module.startswith(name + "."):
                    targets.add(name)
                name = name.rpartition(".")[0] if "." in name else ""
        edges[module] = targets
    return edges


def _layer(module: str) -> str:
    return module.split(".")[0]


def test_the_core_never_imports_the_layers_above_it():
    wrong = sorted(f"{m} -> {t}" for m, ts in _edges().items() if _layer(m) == "rollover"
                   for t in ts if _layer(t) in ("handlers", "cards", "fakes", "bot"))
    assert wrong == []


def test_cards_import_only_the_action_ids_of_handlers_and_nothing_of_fakes():
    wrong = sorted(f"{m} -> {t}" for m, ts in _edges().items() if _layer(m) == "cards"
                   for t in ts if _layer(t) == "fakes" or (_layer(t) == "handlers" and t not in ("handlers",
                                                                                              "handlers.actions")))
    assert wrong == []


def test_handlers_never_import_fakes():
    assert sorted(f"{m} -> {t}" for m, ts in _edges().items() if _layer(m) == "handlers"
                  for t in ts if _layer(t) == "fakes") == []


def test_there_is_no_import_cycle():
    edges = _edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:          # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))
    for node in edges:
        if node not in index:
            visit(node)
    assert cycles == []


def test_bot_py_is_the_only_module_at_the_root():
    assert sorted(path.name for path in ROOT.glob("*.py")) == ["bot.py"]


def test_no_source_file_is_over_800_lines():
    sources = [path for folder in (*PACKAGES, "tests", "bench") for path in (ROOT / folder).rglob("*.py")]
    long = sorted(f"{path.relative_to(ROOT)}: {n}" for path in sources + [ROOT / "bot.py"]
                  if (n := len(path.read_text().splitlines())) > MAX_LINES)
    assert long == []
