"""The process group of tools/train_retrieval.py: torchrun or SLURM, with a timeout."""
from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Tuple

import torch
import torch.distributed as dist
from open_clip_train.distributed import is_using_distributed, world_info_from_env


def init_distributed(device: str, timeout_s: float) -> Tuple[int, int, torch.device]:
    """(rank, world size, device) as open_clip's ``init_distributed_device_so`` finds them
    (torchrun's or SLURM's variables; NCCL on CUDA, gloo otherwise), with a process-group
    timeout, which that function does not take: a collective waiting longer than
    ``timeout_s`` for a rank that died or hangs fails instead of hanging."""
    if device.startswith('cuda') and not torch.cuda.is_available():
        warnings.warn(f'--device {device}: CUDA is not available, falling back to the CPU.')
        device = 'cpu'
    if not is_using_distributed():
        return 0, 1, torch.device(device)
    local_rank, rank, world_size = world_info_from_env()
    cuda = device.startswith('cuda')
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group('nccl' if cuda else 'gloo', init_method='env://', rank=rank,
                            world_size=world_size, timeout=timedelta(seconds=timeout_s))
    return rank, world_size, torch.device('cuda', local_rank) if cuda else torch.device(device)
