"""Runner set-up shared by tools/train.py and tools/test.py: CPU fallbacks."""
from __future__ import annotations

import os
import os.path as osp
from datetime import timedelta
from typing import Any, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log

from ..cluster import DIST_TIMEOUT_S


def sync_bn_to_bn(node: Any) -> int:
    """Replace every ``SyncBN`` norm config under ``node`` by ``BN``; returns how many."""
    count = 0
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += sync_bn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        count += sum(sync_bn_to_bn(value) for value in node)
    return count


def prepare_runtime(cfg: Config, launcher: str) -> None:
    """Adapt ``cfg`` in place to the machine.

    With a launcher, the process group gets ``DIST_TIMEOUT_S`` unless the config sets
    ``env_cfg.dist_cfg.timeout``. Without CUDA: SyncBN becomes BN, and with
    ``--launcher pytorch`` the process group is set up with gloo here (mmengine's own
    set-up calls ``torch.cuda.set_device``) and DDP wraps the CPU model (``device_ids=None``).
    """
    if launcher != 'none':
        timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout', DIST_TIMEOUT_S)
        cfg.merge_from_dict({'env_cfg.dist_cfg.timeout': timeout})
    if torch.cuda.is_available():
        return
    if sync_bn_to_bn(cfg.model):
        print_log('no CUDA: SyncBN replaced by BN in the model config.', logger='current')
    if launcher == 'none':
        return
    if launcher != 'pytorch':
        raise RuntimeError(f'--launcher {launcher} without CUDA is not supported; use '
                           '--launcher pytorch (torchrun) for CPU processes.')
    timeout = cfg.env_cfg.dist_cfg.timeout
    if not dist.is_initialized():
        dist.init_process_group('gloo', rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']),
                                timeout=timedelta(seconds=timeout))
    cfg.env_cfg.dist_cfg = dict(backend='gloo', timeout=timeout)
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def load_config(path: str, launcher: str, cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None) -> Config:
    """A config as mmseg's tools read it: ``--cfg-options`` merged, and the
    work dir from ``--work-dir``, the config, or ``./work_dirs/<config name>``."""
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg
