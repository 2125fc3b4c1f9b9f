"""What a retrieval run reports: a line every N steps (loss, lr, samples/s, data time, ETA),
``train_log.jsonl`` (one entry per logged step), ``results.jsonl`` (one per validation) and,
when asked, TensorBoard scalars in ``tensorboard/`` of the run folder (rank 0 writes)."""
from __future__ import annotations

import datetime
import json
import logging
import os
import time
from typing import Dict

from .checkpoint import truncate_log


class RunLog:
    """The run's logs in ``folder``; a resumed run (``start_step`` > 0 or a restart) first
    drops the entries after its checkpoint's step, which it trains again."""

    def __init__(self, folder: str, rank: int, total_steps: int, global_batch: int,
                 start_step: int, resumed: bool, tensorboard: bool) -> None:
        self.log = logging.getLogger('train_retrieval')
        self.rank, self.total_steps, self.global_batch = rank, total_steps, global_batch
        self.train_file = os.path.join(folder, 'train_log.jsonl')
        self.results_file = os.path.join(folder, 'results.jsonl')
        if resumed and rank == 0:
            truncate_log(self.train_file, start_step)  # a killed run may have logged steps
            truncate_log(self.results_file, start_step)  # that it did not save
        self.writer = None
        if tensorboard and rank == 0:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(os.path.join(folder, 'tensorboard'),
                                        purge_step=start_step + 1 if resumed else None)
        self.start_step, self.start = start_step, time.time()
        self.interval_start, self.interval_steps = time.time(), 0
        self.data_time = 0.0

    def waited(self, seconds: float) -> None:
        """Add the time this step waited for its data."""
        self.data_time += seconds

    def step(self, step: int, epoch: int, loss: float, lr: float, every: int) -> None:
        """Count a finished step; every ``every`` steps and at the last, write its line."""
        self.interval_steps += 1
        if step % every and step != self.total_steps:
            return
        now = time.time()
        elapsed = now - self.interval_start
        speed = self.interval_steps * self.global_batch / elapsed
        data = self.data_time / self.interval_steps
        batch = elapsed / self.interval_steps
        run_steps = step - self.start_step
        eta = (now - self.start) / run_steps * (self.total_steps - step)
        self.log.info('epoch %d step %d/%d (%.0f%%) loss %.4f lr %.3e data %.3f s batch %.3f s '
                      '%.1f samples/s ETA %s', epoch, step, self.total_steps,
                      100 * step / self.total_steps, loss, lr, data, batch, speed,
                      datetime.timedelta(seconds=round(eta)))
        entry = {'step': step, 'epoch': epoch, 'loss': loss, 'lr': lr, 'samples_per_s': speed,
                 'data_time': data, 'batch_time': batch}
        if self.rank == 0:
            with open(self.train_file, 'a') as f:
                f.write(json.dumps(entry) + '\n')
            if self.writer is not None:
                for key in ('loss', 'lr', 'samples_per_s', 'data_time', 'batch_time'):
                    self.writer.add_scalar(f'train/{key}', entry[key], step)
        self.interval_start, self.interval_steps, self.data_time = now, 0, 0.0

    def validation(self, step: int, epoch: int, metrics: Dict[str, float], best: bool,
                   seconds: float) -> None:
        """Record the recalls of a validation (rank 0 writes)."""
        self.log.info('validation at step %d: mean recall %.2f%%, R@1 image->text %.2f%%, '
                      'text->image %.2f%% (%.1f s)%s', step, 100 * metrics['mean_recall'],
                      100 * metrics['text_retrieval_recall@1'],
                      100 * metrics['image_retrieval_recall@1'], seconds,
                      ', the best so far' if best else '')
        if self.rank != 0:
            return
        with open(self.results_file, 'a') as f:
            f.write(json.dumps({'step': step, 'epoch': epoch, **metrics, 'best': best}) + '\n')
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(f'val/{key}', value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
