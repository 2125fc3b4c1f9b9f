"""DataLoader workers that leave the stop signals to their main process."""
from __future__ import annotations

import os
import signal
import threading


def leave_stop_signals_to_parent(worker_id: int = 0) -> None:
    """A DataLoader ``worker_init_fn``: the worker ignores SIGUSR1 and every SIGTERM but its
    parent's.

    SLURM signals every process of a job step, and torch's workers die of a SIGTERM from
    anyone but their parent: the main process would then fail with "DataLoader worker ...
    is killed by signal" instead of writing its checkpoint. The parent's own SIGTERM
    (multiprocessing ends daemonic children with it at exit, then waits for them) still
    ends the worker at once, as torch's handler does. SIGTERM is blocked and read by a
    thread with ``sigwaitinfo``, which names the sender (Python handlers are not told).
    """
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # inherited by later threads
    threading.Thread(target=_end_on_parents_sigterm, args=(os.getppid(),), daemon=True,
                     name='sigterm-from-parent').start()


def _end_on_parents_sigterm(parent: int) -> None:
    while signal.sigwaitinfo({signal.SIGTERM}).si_pid != parent:
        pass
    os._exit(0)
