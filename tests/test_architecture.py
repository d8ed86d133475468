"""The house in rooms: each room imports only the rooms below it, no module imports itself
back through others, and no class or function is too long to read at once."""

import ast
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "keras_lottery"
#: Rooms from the floor up (keras_lottery/__init__.py lists the same order). A room may
#: import its own modules and every room of a lower rank.
RANKS = {"backends": 0, "compat": 0, "io_utils": 0, "version": 0, "layers": 1, "saving": 2,
         "methods": 2, "tickets": 3, "callbacks": 4,
         "models": 5, "optimizers": 5, "data": 5, "metrics": 5, "search": 6, "report": 7, "sweep": 8,
         "apps": 9}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, ast.parse(path.read_text())


def _is_module(name):
    return (ROOT / (name.replace(".", os.sep) + ".py")).exists() or (
        ROOT / name.replace(".", os.sep) / "__init__.py").exists()


def _imported(module, tree, top_level_only=False):
    """The keras_lottery modules `module` imports, anywhere in it (inside functions too,
    and by `importlib.import_module("...")` or `__import__("...")` with a constant name)
    or at its top level only: `from a import b` names `a.b` if it is a module, else `a`;
    the root package is `keras_lottery`."""
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                names.add(candidate if _is_module(candidate) else node.module)
        elif isinstance(node, ast.Call) and node.args and isinstance(
                node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            called = ast.unparse(node.func)
            if called in ("importlib.import_module", "import_module", "__import__"):
                names.add(node.args[0].value)
    return {name for name in names
            if name == "keras_lottery" or name.startswith("keras_lottery.")}


def _room(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_room_has_a_rank_and_a_docstring_that_says_what_it_may_import():
    rooms = {path.stem if path.is_file() else path.name for path in PACKAGE.iterdir()
             if (path.suffix == ".py" and path.stem != "__init__")
             or (path.is_dir() and (path / "__init__.py").exists())}
    assert rooms == set(RANKS)
    for room in rooms:
        init = PACKAGE / room / "__init__.py"
        if init.exists() and room != "apps":
            assert "May import" in ast.get_docstring(ast.parse(init.read_text())), room


def test_no_room_imports_a_room_above_it():
    """Anywhere in a module: inside functions, through importlib, and the root package
    (which imports every room, so no room may import it)."""
    upward = []
    for module, _, tree in _modules():
        room = _room(module)
        if room is None:  # the package's own __init__: the public names of every room
            continue
        for imported in _imported(module, tree):
            other = _room(imported)
            if other is None or RANKS[other] > RANKS[room]:
                upward.append(f"{module} imports {imported}")
    assert not upward


def test_no_module_getattr_loads_a_module():
    """A module `__getattr__` that imports hides a dependency from every reader."""
    hidden = []
    for module, _, tree in _modules():
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
                if _imported(module, ast.Module(body=node.body, type_ignores=[])) or any(
                        isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(node)):
                    hidden.append(module)
    assert not hidden


def test_the_rule_a_masked_layer_defaults_to_lives_in_layers():
    import inspect

    from keras_lottery.layers import MaskedLayer, mask_rules

    default = inspect.signature(MaskedLayer.__init__).parameters["mask_rule"].default
    rule = mask_rules.get_rule(default)
    assert type(rule).__module__.startswith("keras_lottery.layers.")


def test_no_import_cycle_between_modules():
    """Imports anywhere in a module count, those inside functions too."""
    graph = {module: _imported(module, tree) for module, _, tree in _modules()}
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            # A module importing its own package's __init__ is how Python loads it, not a cycle.
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == "open":
                pytest.fail("import cycle: " + " -> ".join(trail + [nxt]))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_classes_and_functions_read_at_a_glance():
    long = []
    for module, _, tree in _modules():
        for node in ast.walk(tree):
            length = getattr(node, "end_lineno", 0) - getattr(node, "lineno", 0) + 1
            if isinstance(node, ast.ClassDef) and length > 120:
                long.append(f"class {module}.{node.name}: {length} lines")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and length > 60:
                long.append(f"function {module}.{node.name}: {length} lines")
    assert not long


def test_no_module_outside_methods_compares_method_names():
    """Callers ask the method (`keras_lottery.methods`); they never test `== "cs"`."""
    found = []
    for module, path, tree in _modules():
        if _room(module) == "methods":
            continue
        for node in ast.walk(tree):
            sides = [node.left, *node.comparators] if isinstance(node, ast.Compare) else []
            names = any(isinstance(c, ast.Constant) and c.value in ("cs", "imp", "iss", "random")
                        for c in sides)
            method = any("method" in ast.unparse(c) for c in sides)
            if names and method:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found
