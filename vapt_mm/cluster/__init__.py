"""Training on clusters: preemption signals, exit codes, the process-group timeout,
restarts and changes of the number of processes, shared by both training tools."""
from .launch import DIST_TIMEOUT_S, restart_count
from .stop import (EXIT_PREEMPTED, EXIT_SAVE_FAILED, STOP_SIGNALS, agree_stop,
                   catch_stop_signals, ignore_stop_signals, signal_name, stop_signal)
from .workers import leave_stop_signals_to_parent
from .world import world_size_note

__all__ = ['DIST_TIMEOUT_S', 'restart_count', 'EXIT_PREEMPTED', 'EXIT_SAVE_FAILED',
           'STOP_SIGNALS', 'agree_stop', 'catch_stop_signals', 'ignore_stop_signals',
           'signal_name', 'stop_signal', 'world_size_note', 'leave_stop_signals_to_parent']
