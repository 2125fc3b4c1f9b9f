"""No code of ours unpickles a file without torch's weights-only guard."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob('vapt_mm/**/*.py'), *ROOT.glob('tools/**/*.py'),
                  *ROOT.glob('benchmarks/**/*.py'), *ROOT.glob('studies/**/*.py')])
#: Loaders that unpickle unless told not to -> (keyword, its safe value).
GUARDS = {'torch.load': ('weights_only', True), 'np.load': ('allow_pickle', False),
          'numpy.load': ('allow_pickle', False)}


def unsafe_calls(source: str):
    """(line, text) of torch.load calls without weights_only=True, numpy loads without
    allow_pickle=False, and pickle loads."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ''
        name = f'{owner}.{node.func.attr}'
        if name in ('pickle.load', 'pickle.loads', 'pickle.Unpickler', 'dill.load'):
            found.append((node.lineno, name))
        if name in GUARDS:
            arg, safe = GUARDS[name]
            guard = [k for k in node.keywords if k.arg == arg]
            value = guard[0].value if guard else None
            if not (isinstance(value, ast.Constant) and value.value is safe):
                found.append((node.lineno, name))
    return found


def test_scanner_flags_unguarded_loads():
    assert unsafe_calls('import torch\ntorch.load(f)\ntorch.load(f, weights_only=False)\n') == [
        (2, 'torch.load'), (3, 'torch.load')]
    assert unsafe_calls('import pickle\npickle.load(f)\n') == [(2, 'pickle.load')]
    assert unsafe_calls('import torch\ntorch.load(f, weights_only=True)\n') == []
    assert unsafe_calls('import numpy as np\nnp.load(f)\nnp.load(f, allow_pickle=True)\n') == [
        (2, 'np.load'), (3, 'np.load')]
    assert unsafe_calls('import numpy as np\nnp.load(f, allow_pickle=False)\n') == []


def test_sources_have_no_unguarded_loads():
    assert SOURCES
    offenders = {str(p.relative_to(ROOT)): calls for p in SOURCES
                 if (calls := unsafe_calls(p.read_text()))}
    assert offenders == {}
