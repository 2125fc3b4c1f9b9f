"""Stop at a step boundary on SIGTERM or SIGUSR1, all ranks at the same step."""
from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Dict, Optional

import torch
import torch.distributed as dist

#: The signals that ask training to stop: SIGTERM (SLURM preemption, ``scancel``, torchrun's
#: shutdown) and SIGUSR1 (``sbatch/srun --signal=USR1@90``: 90 s before the time limit).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
#: Exit code after such a stop: one complete checkpoint of the last step is written and
#: ``--resume`` continues from it (sysexits' EX_TEMPFAIL: "temporary failure, try again").
EXIT_PREEMPTED = 75
#: Exit code when a checkpoint could not be written (sysexits' EX_IOERR); the earlier
#: checkpoints are kept and no later step ran.
EXIT_SAVE_FAILED = 74

_received: Dict[str, int] = {'signum': 0}


def _record(signum: int, frame: Optional[FrameType]) -> None:
    _received['signum'] = signum


def catch_stop_signals() -> None:
    """Record the stop signals instead of dying of them, for the rest of the process (calling
    it again changes nothing; outside the main thread, which alone can, it does nothing).

    Install it before the DataLoader workers are forked: they inherit the handler, so a
    SIGUSR1 that reaches every process of a job (SLURM signals them all) leaves them alive.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        signal.signal(signum, _record)


def ignore_stop_signals() -> None:
    """Ignore the stop signals from now on; once training is over, so that torchrun's
    SIGTERM to the ranks still leaving, after one has left, does not turn their exit code
    into a death by signal. (DataLoader workers: ``leave_stop_signals_to_parent``.)"""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def stop_signal() -> int:
    """The stop signal this process received, 0 if none."""
    return _received['signum']


def agree_stop() -> int:
    """The stop signal that any rank received, 0 if none: a collective (one all-reduce)
    that every rank calls after the same step, so that all stop after that step."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return stop_signal()
    device = (torch.device('cuda', torch.cuda.current_device()) if dist.get_backend() == 'nccl'
              else torch.device('cpu'))
    flag = torch.tensor([stop_signal()], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item())


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name
