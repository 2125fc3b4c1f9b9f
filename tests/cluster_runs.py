"""Training tools as real processes for the cluster-fault tests: output to a file, the pid a
faulted rank writes before it waits, and timed waits."""
import os
import socket
import subprocess
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Dict, Iterator, List, Sequence

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return str(sock.getsockname()[1])


class Run:
    """``args`` started from the repository root in a session of their own (a process group:
    what SLURM signals), stdout and stderr in ``log``."""

    def __init__(self, args: Sequence[object], log: Path, pythonpath: List[str],
                 env: Dict[str, str]) -> None:
        self.log = log
        self.args = [str(a) for a in args]
        environment = {**os.environ, 'OMP_NUM_THREADS': '1',
                       'PYTHONPATH': os.pathsep.join([*pythonpath, str(ROOT)]), **env}
        with open(log, 'w') as out:
            self.process = subprocess.Popen(self.args, cwd=ROOT, env=environment, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.stopped_after = 0.0  # seconds, as a test measured them (``gone_after``)

    def wait(self, timeout: float = 900) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """End the run if it still runs: SIGTERM (torchrun passes it to its workers, which
        stop after their step), SIGKILL after 60 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def output(self) -> str:
        return self.log.read_text()

    def __repr__(self) -> str:
        return f'{" ".join(self.args)}\n{self.output[-4000:]}'


def pid_in(path: Path, run: Run, timeout: float = 900) -> int:
    """The pid that a rank of ``run`` writes to ``path`` when it reaches a fault."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text():
            return int(path.read_text())
        assert run.process.poll() is None, f'ended before the fault: {run}'
        time.sleep(0.05)
    raise AssertionError(f'no rank reached the fault in {timeout} s: {run}')


def gone_after(pid: int, since: float, timeout: float = 300) -> float:
    """Seconds from ``since`` (a ``time.time()``) until process ``pid`` has ended (to 0.05 s
    if it still ran at the call)."""
    deadline = time.monotonic() + timeout
    while not is_gone(pid):
        assert time.monotonic() < deadline, f'process {pid} still runs after {timeout} s'
        time.sleep(0.05)
    return time.time() - since


def is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f'/proc/{pid}/stat') as f:  # a zombie, not yet reaped by the launcher
        return f.read().split(') ')[-1].startswith('Z')


@contextmanager
def stopped_at_exit(runs: Dict[str, Run]) -> Iterator[Dict[str, Run]]:
    """``runs``, each stopped (``Run.stop``) when the block ends, also on a failure."""
    try:
        yield runs
    finally:
        for run in runs.values():
            run.stop()
