"""A content-addressed cache for artefacts that are expensive to make (pretrained weights)."""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, Mapping, Optional, Sequence


def cache_root() -> Path:
    """``$VAPT_PRETRAIN_CACHE``, else ``~/.cache/vapt_mm/pretrained``."""
    default = Path.home() / '.cache' / 'vapt_mm' / 'pretrained'
    return Path(os.environ.get('VAPT_PRETRAIN_CACHE', default)).expanduser()


def preset_recipe(presets: Mapping[str, Mapping[str, Any]], preset: str,
                  overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """``presets[preset]`` with ``overrides``; an unknown preset or option is named."""
    if preset not in presets:
        raise ValueError(f'unknown recipe preset {preset!r}; choose from {sorted(presets)}.')
    unknown = sorted(set(overrides) - set(presets[preset]))
    if unknown:
        raise ValueError(f'unknown recipe option(s) {unknown}; valid: {sorted(presets[preset])}.')
    return {**presets[preset], **overrides}


def recipe_hash(recipe: Mapping[str, Any], modules: Sequence[ModuleType] = ()) -> str:
    """A short hash of a JSON-able recipe and the source of the modules that act on it."""
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()[:16]


def cached_artifact(name: str, recipe: Mapping[str, Any], build: Callable[[Path], None],
                    modules: Sequence[ModuleType] = (), root: Optional[Path] = None) -> Path:
    """The folder ``root/name-<hash>`` holding what ``build(folder)`` writes, built once.

    ``build`` writes into a temporary folder that is renamed into place only
    when it returns, so an interrupted build never leaves a half-written entry.
    """
    root = Path(root) if root is not None else cache_root()
    target = root / f'{name}-{recipe_hash(recipe, modules)}'
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f'.{target.name}.', dir=root))
    try:
        build(staging)
        (staging / 'recipe.json').write_text(json.dumps(recipe, indent=2, sort_keys=True))
        try:
            staging.rename(target)
        except OSError:  # another process finished the same build first
            if not target.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target
