"""The package's structure: imports point down the layers and never form a cycle, each
choice (network, optimizer) is named in one registry only, and the export assets (head.json,
data.json, covariates.json, ensemble.json) have one writer.

Layers, lowest first: `trainer.util` (helpers) <- `trainer.data` <- `trainer.model` <-
`trainer.training` (run wiring) <- `trainer.search` (the model search, over many runs) <- the
command modules `trainer.<command>`. A module may import its own layer or a lower one; a
command imports no other command. Every import counts, including those inside functions.
"""

import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest

from tests.conftest import REPO_ROOT
from trainer.model.export_assets import (
    CALIBRATED_HEAD_FILENAME,
    COVARIATES_ASSET,
    DATA_ASSET,
    ENSEMBLE_ASSET,
    HEAD_ASSET,
)
from trainer.model.networks import NETWORKS
from trainer.model.optimizers import OPTIMIZERS

LAYERS = ("util", "data", "model", "training", "search")  # then the commands, above them all
COMMAND_LAYER = len(LAYERS)

Graph = Dict[str, Set[str]]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package_dir: Path) -> Graph:
    """{module: modules of the package it imports}, from every import statement in its source."""
    package = package_dir.name
    files = {module_name(path, package_dir): path for path in sorted(package_dir.rglob("*.py"))}
    graph: Graph = {}
    for module, path in files.items():
        targets: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from a.b import c` imports a.b, and a.b.c too when c is a module.
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            targets.update(name for name in names if name in files and name.startswith(package))
        targets.discard(module)
        # A package's own __init__ (a docstring) is no dependency worth a layer.
        graph[module] = {target for target in targets if files[target].name != "__init__.py"}
    return graph


def find_cycle(graph: Graph) -> Optional[List[str]]:
    """One cycle of the graph as [a, b, ..., a], or None.

    >>> find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}})
    ['a', 'b', 'c', 'a']
    >>> find_cycle({"a": {"b"}, "b": set()}) is None
    True
    """
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def layer_of(module: str) -> int:
    """0 for trainer.util.*, ..., COMMAND_LAYER for a command module trainer.<name>."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS):
        return LAYERS.index(parts[1])
    return COMMAND_LAYER


def layering_violations(graph: Graph) -> List[str]:
    """Every import that points up a layer, or from one command to another."""
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if layer_of(target) > layer_of(module):
                found.append(f"{module} imports {target}, a higher layer")
            elif layer_of(module) == layer_of(target) == COMMAND_LAYER and module != "trainer":
                found.append(f"command {module} imports command {target}; move what they share "
                             "below both")
    return found


TRAINER_GRAPH = import_graph(REPO_ROOT / "trainer")


def test_the_graph_sees_every_module_and_imports_inside_functions():
    assert {"trainer.task", "trainer.util.cli", "trainer.data.schema", "trainer.model.model_fn",
            "trainer.training.experiment"} <= set(TRAINER_GRAPH)
    # trainer.util.cli imports TensorFlow inside a function; trainer.data.schema imports cli.
    assert "trainer.util.cli" in TRAINER_GRAPH["trainer.data.schema"]
    assert "trainer.training.experiment" in TRAINER_GRAPH["trainer.task"]


def test_trainer_imports_have_no_cycle():
    assert find_cycle(TRAINER_GRAPH) is None, " -> ".join(find_cycle(TRAINER_GRAPH))


def test_trainer_imports_point_down_the_layers():
    assert layering_violations(TRAINER_GRAPH) == []


def test_evaluate_and_predict_need_no_training_stack():
    """What evaluate and predict import, all the way down, holds nothing of training."""
    for command in ("trainer.evaluate", "trainer.predict", "trainer.prepare"):
        reached, todo = set(), [command]
        while todo:
            module = todo.pop()
            if module not in reached:
                reached.add(module)
                todo.extend(TRAINER_GRAPH[module])
        assert not {m for m in reached if m.startswith("trainer.training")}, command


def write_package(root: Path, modules: Dict[str, str]) -> Path:
    package = root / "trainer"
    for name, source in modules.items():
        path = package / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        for parent in path.relative_to(package).parents:
            init = package / parent / "__init__.py"
            if not init.exists():
                init.write_text('"""package"""\n')
    return package


def test_a_cycle_through_an_import_inside_a_function_is_caught(tmp_path):
    package = write_package(tmp_path, {
        "util.cli": "def setup():\n    from trainer.task import LOG_FORMAT\n    return LOG_FORMAT\n",
        "task": "from trainer.util import cli\nLOG_FORMAT = '%(message)s'\n",
    })
    graph = import_graph(package)
    assert find_cycle(graph) == ["trainer.task", "trainer.util.cli", "trainer.task"]
    assert layering_violations(graph) == ["trainer.util.cli imports trainer.task, a higher layer"]


def test_an_upward_import_and_a_command_importing_a_command_are_caught(tmp_path):
    package = write_package(tmp_path, {
        "data.schema": "from trainer.model.heads import KEY\n",
        "model.heads": "KEY = 'predicted'\n",
        "evaluate": "from trainer.predict import read_rows\n",
        "predict": "def read_rows():\n    pass\n",
    })
    assert layering_violations(import_graph(package)) == [
        "trainer.data.schema imports trainer.model.heads, a higher layer",
        "command trainer.evaluate imports command trainer.predict; move what they share below both",
    ]


def string_constants(path: Path) -> Set[str]:
    """The string literals of a module, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and id(node) not in docstrings}


@pytest.mark.parametrize("registry, home", [(NETWORKS, "trainer/model/networks.py"),
                                            (OPTIMIZERS, "trainer/model/optimizers.py")])
def test_each_choice_is_named_in_its_registry_only(registry, home):
    for path in sorted((REPO_ROOT / "trainer").rglob("*.py")):
        if path.relative_to(REPO_ROOT).as_posix() != home:
            named = set(registry) & string_constants(path)
            assert not named, f"{path.relative_to(REPO_ROOT)} names {sorted(named)}; read {home}"


EXPORT_ASSET_NAMES = (HEAD_ASSET, DATA_ASSET, COVARIATES_ASSET, ENSEMBLE_ASSET,
                      CALIBRATED_HEAD_FILENAME)
EXPORT_ASSETS_HOME = "trainer/model/export_assets.py"


def names_a_file(constant: str, names) -> Set[str]:
    """The names of `names` that the string `constant` names as a file: itself, or a path's end.

    >>> sorted(names_a_file("/head.json", ["head.json", "data.json"]))
    ['head.json']
    >>> names_a_file("its export's data.json, else 1", ["data.json"])
    set()
    """
    return {name for name in names if constant == name or constant.endswith("/" + name)}


def test_the_export_assets_are_named_by_their_owner_only():
    """Only trainer.model.export_assets spells an asset's file name; every other module writes
    (or reads) one through it."""
    for folder in ("trainer", "benchmarks"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            if path.relative_to(REPO_ROOT).as_posix() != EXPORT_ASSETS_HOME:
                named = set().union(*(names_a_file(constant, EXPORT_ASSET_NAMES)
                                      for constant in string_constants(path)))
                assert not named, (f"{path.relative_to(REPO_ROOT)} names {sorted(named)}; write "
                                   f"and read the export assets through {EXPORT_ASSETS_HOME}")
    assert names_a_file(HEAD_ASSET, EXPORT_ASSET_NAMES) and \
        set(EXPORT_ASSET_NAMES) <= string_constants(REPO_ROOT / EXPORT_ASSETS_HOME)


def test_a_second_writer_of_an_asset_is_caught(tmp_path):
    module = tmp_path / "ensemble.py"
    module.write_text('def write(d):\n    open(f"{d}/head.json", "w").write("{}")\n')
    assert set().union(*(names_a_file(constant, EXPORT_ASSET_NAMES)
                         for constant in string_constants(module))) == {"head.json"}
