"""What a cluster launch needs from the tools: the process-group timeout and restarts."""
from __future__ import annotations

import os

#: Seconds a collective may wait for the other ranks before it fails (gloo raises; NCCL's
#: watchdog aborts the process): a rank that died or hangs stops the others within this
#: time even where no launcher notices. Longer than what one rank may do alone while the
#: others wait (rank 0 writing a large checkpoint to a network disk), as NCCL's default.
DIST_TIMEOUT_S = 600


def restart_count() -> int:
    """How often torchrun's elastic agent has restarted the workers (``--max-restarts``)."""
    return int(os.environ.get('TORCHELASTIC_RESTART_COUNT', '0'))
