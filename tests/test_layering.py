"""The package's import graph has no circles, and its layers point one way.

Every import counts, module-level or inside a function: a deferred import
still makes the two modules depend on each other, it only hides the circle
from the interpreter, so a test of module-level imports alone would bless the
workaround instead of the layering.
"""
import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "gmmplat"


def _module_name(path):
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(module, node, modules):
    """The package modules one import node names, as dotted names."""
    is_package = (PACKAGE_DIR.parent / module.replace(".", "/") / "__init__.py").exists()
    if isinstance(node, ast.Import):
        bases = [alias.name for alias in node.names]
        candidates = bases
    else:
        if node.level:
            anchor = module.split(".")
            anchor = anchor if is_package else anchor[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        # `from pkg import name` imports the submodule pkg.name when there is one
        candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        bases = [base]
    found = set()
    for name in candidates:
        if name in modules:
            found.add(name)
    for name in bases:
        # `import gmmplat.a.b` and `from gmmplat.a.b import x` also run gmmplat.a
        while name and name not in found:
            if name in modules:
                found.add(name)
                break
            name = name.rpartition(".")[0]
    return found


def import_graph():
    """{module: set of package modules it imports}, over every gmmplat/**/*.py."""
    paths = {_module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}
    graph = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _resolve(module, node, paths)
        edges.discard(module)
        graph[module] = edges
    return graph


def _is_ancestor_package(a, b):
    """Whether b is a package above a: Python runs it before a, so that edge adds nothing.

    The other direction counts: a package's __init__ that imports its children
    closes a circle with any module that reaches back into the package.
    """
    return a.startswith(b + ".")


def find_cycles(graph):
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = [0]

    def edges(node):
        return [m for m in graph.get(node, ()) if not _is_ancestor_package(node, m)]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges(node):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _circles(graph, component):
    """The shortest circle through each module of a component, each named once, for the message."""
    seen, circles = set(), []
    for start in component:
        circle = _shortest_circle(graph, component, start)
        if frozenset(circle) not in seen:
            seen.add(frozenset(circle))
            circles.append(" -> ".join(circle))
    return circles


def _shortest_circle(graph, component, start):
    members = set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node] & members):
                if _is_ancestor_package(node, nxt):
                    continue
                if nxt == start:
                    return paths[node] + [start]
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return component


def test_no_import_circles():
    graph = import_graph()
    circles = [circle for c in find_cycles(graph) for circle in _circles(graph, c)]
    assert not circles, "import circles:\n" + "\n".join(circles)


def _imports_under(graph, importer_prefix, imported_prefix):
    return sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        if a.startswith(importer_prefix)
        for b in targets
        if (b.startswith(imported_prefix) if imported_prefix.endswith(".")
            else b == imported_prefix or b.startswith(imported_prefix + "."))
    )


def test_analysis_does_not_import_train_internals():
    """Analysis reads a run's records through gmmplat.records; of the trainer it uses only the
    package's public ``load_run`` (rebuilding a model from its config needs the model builder)."""
    offending = _imports_under(import_graph(), "gmmplat.analysis", "gmmplat.train.")
    assert not offending, "analysis imports train internals:\n" + "\n".join(offending)


def test_records_import_no_model_code():
    """Anything may read a run's records, so the records module depends on no step or trainer."""
    graph = import_graph()
    allowed = {"gmmplat", "gmmplat.errors", "gmmplat.physics.geometry"}
    assert graph["gmmplat.records"] <= allowed, sorted(graph["gmmplat.records"] - allowed)


def test_decoders_do_not_import_encoders():
    """Both sides of the model build their networks from gmmplat.model.nets."""
    graph = import_graph()
    offending = _imports_under(graph, "gmmplat.decoders", "gmmplat.encoders")
    offending += _imports_under(graph, "gmmplat.encoders", "gmmplat.decoders")
    assert not offending, "\n".join(sorted(set(offending)))


def test_graph_sees_relative_imports():
    """The parser resolves the package's own relative imports (a guard for the test itself)."""
    graph = import_graph()
    assert "gmmplat.projectors.base" in graph["gmmplat.projectors.dense"]


def test_package_root_holds_only_the_infrastructure():
    """The root of the package holds what every stage uses; the stages live in their packages
    (docs/design.md, "Files")."""
    root = sorted(p.stem for p in PACKAGE_DIR.glob("*.py"))
    assert root == ["__init__", "__main__", "allocator", "cli", "errors", "plugins", "records", "registry"], root
