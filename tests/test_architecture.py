"""The package's shape: no import circle (module- or function-level), no module over 450 lines, every
module says in its docstring what it is for. Read from the source with `ast`; nothing is imported."""
import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cramlab"
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(node, importer: str, is_package: bool) -> list[str]:
    """The cramlab modules one import statement names (relative or absolute; `from . import x` names
    the submodule x when there is one, else the package)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = importer.split(".")
        base = base[:len(base) - node.level + (1 if is_package else 0)]
        base = ".".join(base + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def import_graph() -> dict[str, set[str]]:
    """module -> the cramlab modules it imports anywhere in its source (functions included)."""
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _resolve(node, name, path.name == "__init__.py"):
                    while target and target not in MODULES and "." in target:
                        target = target.rsplit(".", 1)[0]      # `import cramlab.x.y` -> the module it names
                    if target in MODULES and target != name:
                        targets.add(target)
        graph[name] = targets
    return graph


def test_the_import_walk_sees_relative_absolute_and_function_level_imports():
    graph = import_graph()
    assert "cramlab.errors" in graph["cramlab.capacity"]                  # module level, relative
    assert "cramlab.science.report" in graph["cramlab.science.search"]                    # module level, relative
    assert "cramlab.engine.plain" in graph["cramlab.science.search"]                      # inside a function
    assert "cramlab.capacity" in graph["cramlab.cli.basic"]               # `from .. import capacity as cap`
    assert "cramlab.cli.basic" in graph["cramlab.cli"]                    # `from . import basic, ...`
    assert "cramlab.cli" in graph["cramlab.__main__"]


def test_no_import_cycle_inside_the_package():
    try:
        tuple(graphlib.TopologicalSorter(import_graph()).static_order())
    except graphlib.CycleError as exc:
        pytest.fail("import cycle: " + " -> ".join(exc.args[1]))


def test_the_package_modules_never_import_the_command_line():
    graph = import_graph()
    outside = [m for m, targets in graph.items() if not m.startswith("cramlab.cli") and m != "cramlab.__main__"
               and any(t.startswith("cramlab.cli") for t in targets)]
    assert outside == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_at_most_450_lines(name):
    n_lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert n_lines <= MAX_LINES, f"{name} has {n_lines} lines; split it by concept (at most {MAX_LINES})"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_docstring_says_what_it_is_for(name):
    doc = ast.get_docstring(ast.parse(MODULES[name].read_text(encoding="utf-8"))) or ""
    words = doc.split()
    assert len(words) >= 12, f"{name}: the docstring must say what the module owns and what it does not"
    assert doc.strip().rstrip(".").lower() != name.rsplit(".", 1)[-1], name


#: The layering docs/architecture.md draws, bottom up: a module imports only from its own layer or a lower one,
#: and the two folders of layer 2 (engine, models) never import each other.
LAYERS = (
    ("cramlab.errors", "cramlab.capacity"),                       # light leaves: no torch
    ("cramlab.kernels",),                                          # faster kernels for one model instance
    ("cramlab.engine", "cramlab.models"),                          # the step and its schedulers | models and texts
    ("cramlab.science", "cramlab.env"),                            # protocols over the engine and their numbers
    ("cramlab.poc",),                                              # the practitioner's question
    ("cramlab.lab",),                                              # the notebook side
    ("cramlab.cli", "cramlab.__main__"),                           # the command line
)


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, folder) of a module; the front door `cramlab` itself sits above every layer."""
    for i, folders in enumerate(LAYERS):
        for folder in folders:
            if module == folder or module.startswith(folder + "."):
                return i, folder
    if module == "cramlab":
        return len(LAYERS), "cramlab"
    raise AssertionError(f"{module} is in no layer of LAYERS: add its folder to docs/architecture.md and here")


def layering_violations(graph) -> list[str]:
    bad = []
    for module, targets in graph.items():
        layer, folder = layer_of(module)
        for target in targets:
            t_layer, t_folder = layer_of(target)
            if t_layer > layer or (t_layer == layer and t_folder != folder and layer == 2):
                bad.append(f"{module} -> {target}")
    return sorted(bad)


def test_every_module_sits_in_a_declared_layer():
    for name in MODULES:
        layer_of(name)


def test_imports_only_go_down_the_layers():
    assert layering_violations(import_graph()) == []


def test_the_layering_check_catches_an_upward_import():
    graph = {name: set(targets) for name, targets in import_graph().items()}
    graph["cramlab.engine.step"].add("cramlab.science.report")        # the engine reaching up into the science
    graph["cramlab.models.load"].add("cramlab.engine.plain")          # a sibling folder of the same layer
    assert layering_violations(graph) == ["cramlab.engine.step -> cramlab.science.report",
                                          "cramlab.models.load -> cramlab.engine.plain"]


def test_the_folders_are_the_ones_docs_architecture_draws():
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert folders == ["cli", "engine", "kernels", "lab", "models", "poc", "science"]
    for folder in folders:
        assert f"cramlab/{folder}/" in doc, f"docs/architecture.md does not draw cramlab/{folder}/"
