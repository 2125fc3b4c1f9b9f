"""Faults injected into tools/train_retrieval.py processes (imported at start-up through
PYTHONPATH), chosen by the environment of the test that starts them:

- ``VAPT_FAULT=hold``: in step ``VAPT_FAULT_STEP`` (counted in this process), before the
  gradients are reduced, every rank writes its pid to ``VAPT_FAULT_FILE.<rank>``, and rank
  ``VAPT_FAULT_RANK`` waits there until it gets a stop signal (or is killed);
- ``VAPT_FAULT=signal``: in that step rank ``VAPT_FAULT_RANK`` sends itself
  ``VAPT_FAULT_SIGNAL``;
- ``VAPT_FAULT=enospc``: rank 0's checkpoint of step ``VAPT_FAULT_STEP`` stops half-way
  with "No space left on device".
"""
import errno
import io
import os
import signal
import sys
import time

FAULT = os.environ.get('VAPT_FAULT')
RANK = os.environ.get('RANK', '0')
FAULTED = RANK == os.environ.get('VAPT_FAULT_RANK', '0')


def at_step(run):
    """Wrap ``vapt_mm.clip.accumulate.contrastive_backward``: ``run()`` at the chosen step."""
    from vapt_mm.clip import accumulate
    backward, calls = accumulate.contrastive_backward, []

    def faulty(*args, **kwargs):
        calls.append(1)
        if len(calls) == int(os.environ['VAPT_FAULT_STEP']):
            run()
        return backward(*args, **kwargs)
    accumulate.contrastive_backward = faulty


def hold():
    from vapt_mm.cluster import stop_signal
    with open(f'{os.environ["VAPT_FAULT_FILE"]}.{RANK}', 'w') as f:
        f.write(str(os.getpid()))
    deadline = time.time() + 300
    while FAULTED and not stop_signal() and time.time() < deadline:
        time.sleep(0.02)


def fail_a_save():
    import torch
    save = torch.save

    def half_then_enospc(obj, f, *args, **kwargs):
        if not (isinstance(obj, dict) and obj.get('step') == int(os.environ['VAPT_FAULT_STEP'])):
            return save(obj, f, *args, **kwargs)  # other saves, other steps' checkpoints
        data = io.BytesIO()
        save(obj, data, *args, **kwargs)
        f.write(data.getvalue()[:len(data.getvalue()) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    torch.save = half_then_enospc


if FAULT and sys.argv[0].endswith('train_retrieval.py'):
    if FAULT == 'hold':
        at_step(hold)
    elif FAULT == 'signal' and FAULTED:
        at_step(lambda: os.kill(os.getpid(), getattr(signal, os.environ['VAPT_FAULT_SIGNAL'])))
    elif FAULT == 'enospc' and FAULTED:
        fail_a_save()
