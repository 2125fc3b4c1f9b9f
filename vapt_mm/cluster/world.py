"""What a resume on another number of processes keeps exact, as one log line."""
from __future__ import annotations

from typing import Optional

EXACT = 'the weights, optimizer state and step count'
NOT_EXACT = ('the per-rank RNG streams (dropout, random augmentation) cannot be carried over and '
             'are reseeded, so random draws differ from an uninterrupted run, and the gradient '
             'sum over the ranks rounds differently (float round-off)')


def world_size_note(saved: int, now: int, saved_batch: Optional[int], batch: int) -> str:
    """The note to log when a checkpoint of ``saved`` processes (global batch ``saved_batch``,
    None if not recorded) resumes on ``now`` processes with global batch ``batch``; '' when
    neither changed."""
    if saved_batch is None:
        data = (', and the LR schedule and data position if the global batch is the one the '
                'checkpoint was trained with (not recorded in it)')
    elif saved_batch == batch:
        data = f', and the LR schedule and data position (the same global batch of {batch})'
    else:
        data = (f'; the data position is not: the global batch was {saved_batch}, now {batch}, '
                'so the remaining steps see other samples than the original run, and an epoch '
                'has another number of steps')
    if saved == now:
        return '' if saved_batch in (None, batch) else f'resuming with {EXACT} exact{data}.'
    return (f'resuming on {now} process(es) a checkpoint written by {saved}: exact: {EXACT}'
            f'{data}; not exact: {NOT_EXACT}.')
