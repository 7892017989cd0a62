"""The package's structure, read from its sources: imports point one way, private names stay home.

Every ``import`` of every module of ``trx_nipype`` counts, those inside functions
included (a deferred import is still a dependency; it only hides a cycle).
See ARCHITECTURE.md for the layers and the rules these tests hold.
"""

from __future__ import annotations

import ast
import fnmatch
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import trx_nipype

PACKAGE = Path(trx_nipype.__file__).parent


@dataclass(frozen=True)
class Import:
    """One import statement's target, as written in a module."""

    importer: str  # the importing module
    module: str  # the module imported (a submodule when a name of a package is one)
    name: str | None  # the name taken from it (None: the module itself)
    line: int


def read_package(folder: Path) -> tuple[dict[str, tuple[Path, bool]], list[Import]]:
    """The modules of the package in ``folder`` and every import between them.

    Returns ``dotted name -> (file, is a package's __init__)`` and the imports
    (at any depth of the code, functions included) whose target is in the package.
    """
    root = folder.name
    modules = {}
    for path in sorted(folder.rglob("*.py")):
        parts = list(path.relative_to(folder.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        modules[".".join(parts)] = (path, is_package)

    def owner(dotted: str) -> str:  # ``a.b.c`` -> ``a.b`` when ``c`` is a name of a.b
        while dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted

    imports = []
    for name, (path, is_package) in modules.items():
        package = name.split(".") if is_package else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imports.extend(Import(name, owner(a.name), None, node.lineno)
                               for a in node.names if a.name.split(".")[0] == root)
            elif isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                source = ".".join(base + ([node.module] if node.module else []))
                if source.split(".")[0] != root:
                    continue
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    if full in modules:  # a submodule: ``from . import zipio``
                        imports.append(Import(name, full, None, node.lineno))
                    else:
                        imports.append(Import(name, owner(source), alias.name, node.lineno))
    return modules, imports


MODULES, IMPORTS = read_package(PACKAGE)


def _graph(imports: list[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in imports:
        if imp.module != imp.importer:
            graph[imp.importer].add(imp.module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _private_imports(imports: list[Import]) -> list[str]:
    """``importer -> module.name`` for each ``_name`` taken from another module, and
    ``importer -> module`` for each import of a ``_module`` from outside its package."""
    out = []
    for imp in imports:
        if imp.name is not None and imp.name.startswith("_") and not imp.name.startswith("__") \
                and imp.module != imp.importer:
            out.append(f"{imp.importer} -> {imp.module}.{imp.name}")
        parts = imp.module.split(".")
        for i, part in enumerate(parts):
            home = ".".join(parts[:i])  # the package a private module is private to
            if part.startswith("_") and not part.startswith("__") \
                    and imp.importer != home and not imp.importer.startswith(home + "."):
                out.append(f"{imp.importer} -> {imp.module}")
    return sorted(set(out))


#: the layers of ARCHITECTURE.md, lowest first: a module imports only from its own layer
#: and the layers below (the package faces, ``__init__``, sit with what they hand on)
LAYERS = [
    ("leaves", ["trx_nipype", "trx_nipype.core.errors", "trx_nipype.core.dtypes",
                "trx_nipype.core.arrays", "trx_nipype.core.tempfiles", "trx_nipype.core.zipio",
                "trx_nipype.core.header"]),
    ("space maths", ["trx_nipype.core.space"]),
    ("files", ["trx_nipype.core.reading", "trx_nipype.core.container", "trx_nipype.core.writer"]),
    ("other formats", ["trx_nipype.core.formats", "trx_nipype.core.formats.*"]),
    ("TrxFile", ["trx_nipype.core.source", "trx_nipype.core.build", "trx_nipype.core.trxfile"]),
    ("on a TrxFile", ["trx_nipype.core.loader", "trx_nipype.core.saving",
                      "trx_nipype.core.growable", "trx_nipype.core.metrics",
                      "trx_nipype.core.naming"]),
    ("whole files", ["trx_nipype.core.reference", "trx_nipype.core.blockwrite",
                     "trx_nipype.core.concatenating", "trx_nipype.core.converting",
                     "trx_nipype.core.summary", "trx_nipype.core"]),
    ("operations", ["trx_nipype.core.operations", "trx_nipype.core.operations.*"]),
    ("drawings, testing, data", ["trx_nipype.reports.raster", "trx_nipype.reports.render",
                                 "trx_nipype.reports.measures",
                                 "trx_nipype.reports.figures", "trx_nipype.reports.html",
                                 "trx_nipype.reports.qc", "trx_nipype.reports.tractogram",
                                 "trx_nipype.testing", "trx_nipype.testing.*",
                                 "trx_nipype.data"]),
    ("interfaces", ["trx_nipype.interfaces", "trx_nipype.interfaces.*"]),
    ("workflows", ["trx_nipype.workflows", "trx_nipype.workflows.*"]),
    ("run reports", ["trx_nipype.reports", "trx_nipype.reports.*"]),
    ("command line", ["trx_nipype.cli", "trx_nipype.cli.*"]),
]


def _layer(module: str) -> int:
    """The layer of a module: an exact name first, then the first pattern that matches."""
    for exact in (True, False):
        for i, (_, patterns) in enumerate(LAYERS):
            if module in patterns if exact else \
                    any(fnmatch.fnmatchcase(module, p) for p in patterns):
                return i
    raise KeyError(f"{module}: in no layer of LAYERS (add it where it belongs)")


def test_the_sources_are_read() -> None:
    # a reader that found nothing would pass every test below
    assert {"trx_nipype.core.trxfile", "trx_nipype.cli.main",
            "trx_nipype.workflows.runner"} <= set(MODULES)
    assert any(i.importer == "trx_nipype.core.trxfile" and i.module == "trx_nipype.core.arrays"
               for i in IMPORTS)


def test_no_import_cycle_deferred_imports_included() -> None:
    assert _cycles(_graph(IMPORTS)) == []


def test_no_private_name_imported_from_another_module() -> None:
    assert _private_imports(IMPORTS) == []


def test_imports_point_down_the_layers() -> None:
    upward = sorted(f"{imp.importer} ({LAYERS[_layer(imp.importer)][0]}) -> {imp.module} "
                    f"({LAYERS[_layer(imp.module)][0]}), line {imp.line}"
                    for imp in IMPORTS if _layer(imp.module) > _layer(imp.importer))
    assert upward == []


def test_the_core_uses_numpy_nibabel_and_dipy_only() -> None:
    # no Nipype, no matplotlib below the interfaces (isal: the optional zip library)
    allowed = set(sys.stdlib_module_names) | {"trx_nipype", "numpy", "nibabel", "dipy", "isal"}
    found = {}
    for name, (path, _) in MODULES.items():
        if not name.startswith("trx_nipype.core"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            tops = [a.name.split(".")[0] for a in node.names] if isinstance(node, ast.Import) \
                else [node.module.split(".")[0]] if isinstance(node, ast.ImportFrom) \
                and not node.level and node.module else []
            found.update({f"{name}: {top}": top for top in tops if top not in allowed})
    assert found == {}


def _warn_calls(path: Path) -> list[tuple[int, str | None]]:
    """``(line, category name)`` of each ``warnings.warn`` call (None: no ``category=``)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "warn" and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "warnings":
            given = [k.value for k in node.keywords if k.arg == "category"]
            out.append((node.lineno, given[0].id if given and isinstance(given[0], ast.Name)
                        else None))
    return out


def test_every_warning_has_a_category_of_the_package() -> None:
    from trx_nipype.core import errors

    ours = {name for name, obj in vars(errors).items()
            if isinstance(obj, type) and issubclass(obj, errors.TrxWarning)}
    calls = {f"{name}:{line}": category for name, (path, _) in MODULES.items()
             for line, category in _warn_calls(path)}
    assert len(calls) >= 18  # the reader finds them
    assert {where: category for where, category in calls.items()
            if category not in ours} == {}


def test_the_reader_sees_deferred_imports_cycles_and_private_names(tmp_path: Path) -> None:
    # the reader itself, on a small package: an import inside a function is an arrow
    # like any other, and ``from pkg import name`` points at the submodule when it is one
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import os\n\n\ndef f():\n    from .b import _hidden\n"
                              "    from pkg.sub._d import e\n")
    (pkg / "b.py").write_text("from pkg.sub import c\n_hidden = 1\n")
    (pkg / "sub" / "c.py").write_text("from .. import a\nfrom . import _d\n")
    (pkg / "sub" / "_d.py").write_text("e = 1\n")
    modules, imports = read_package(pkg)
    assert sorted(f"{i.importer} -> {i.module}" for i in imports) == [
        "pkg.a -> pkg.b", "pkg.a -> pkg.sub._d", "pkg.b -> pkg.sub.c", "pkg.sub.c -> pkg.a",
        "pkg.sub.c -> pkg.sub._d"]
    assert _cycles(_graph(imports)) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    # _d is private to pkg.sub: its sibling c may import it, pkg.a may not
    assert _private_imports(imports) == ["pkg.a -> pkg.b._hidden", "pkg.a -> pkg.sub._d"]
