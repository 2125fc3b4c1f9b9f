"""Train VAPT prompts of an open_clip image tower on image-caption pairs (contrastive).

Single process:  python tools/train_retrieval.py --model ViT-B-32 --pretrained ckpt.bin \
                     --train-data data/demo_retrieval/train.csv --output work_dirs/vapt_b32
Shards:          ... --dataset-type webdataset --train-data 'shards/shard-{0000..0099}.tar' \
                     --train-num-samples 1000000 --val-data val.json --logs logs --name run1 \
                     --report-to tensorboard
Several:         bash tools/dist_train_retrieval.sh 4 --model ViT-B-32 ...   (torchrun)
SLURM:           bash tools/slurm_train_retrieval.sh PARTITION JOB_NAME --model ...

open_clip's option names are accepted (--accum-freq, --logs/--name, --save-frequency,
--report-to, --dataset-type, --train-num-samples, --val-data, --val-frequency,
--log-every-n-steps); --accum-steps, --output and --log-every remain as aliases.

Exit codes: 0 trained; 75 stopped by SIGTERM/SIGUSR1 after writing a checkpoint (``--resume
latest`` continues); 74 a checkpoint could not be written (the previous one is kept); 1 other
errors.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import math
import os
import random
import shlex
import sys
import time
from typing import Any, Dict, List

import torch
import torch.distributed as dist
from open_clip.loss import ClipLoss
from open_clip_train.scheduler import cosine_lr
from torch.nn.parallel import DistributedDataParallel

from vapt_mm.clip import EXTRAS, apply_vapt, load_captions, save_vapt
from vapt_mm.clip.accumulate import contrastive_backward
from vapt_mm.clip.adapter import BASELINES, apply_baseline
from vapt_mm.clip.checkpoint import (IncompleteCheckpointError, load_checkpoint, rng_state,
                                     save_checkpoint, set_rng_state)
from vapt_mm.clip.cli import add_caption_file_arguments, add_model_arguments, parse_key_values
from vapt_mm.clip.distributed import init_distributed
from vapt_mm.clip.factory import create_clip
from vapt_mm.clip.optim import param_groups, scaled_schedule
from vapt_mm.clip.run_log import RunLog
from vapt_mm.clip.shards import expand_shards, is_shard_spec
from vapt_mm.clip.train_data import PairBatches, ShardBatches
from vapt_mm.clip.validation import Validation
from vapt_mm.cluster import (DIST_TIMEOUT_S, EXIT_PREEMPTED, EXIT_SAVE_FAILED, agree_stop,
                             catch_stop_signals, ignore_stop_signals, restart_count,
                             signal_name, world_size_note)
from vapt_mm.core import count_parameters


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description='VAPT prompt tuning of an open_clip model.')
    add_model_arguments(p)
    p.add_argument('--train-data', required=True,
                   help=".csv/.tsv (open_clip), caption .json, or webdataset shards: a brace "
                        "pattern such as 'shards/shard-{0000..0099}.tar' (several joined by ::)")
    p.add_argument('--dataset-type', default='auto', choices=['auto', 'csv', 'webdataset'],
                   help='csv: a CSV or caption JSON (map-style); auto: webdataset for .tar '
                        'names, brace patterns and :: lists')
    p.add_argument('--train-num-samples', type=int, default=None,
                   help='samples in an epoch of shards (required with webdataset)')
    p.add_argument('--split', default='train', help='split of a caption JSON')
    add_caption_file_arguments(p)
    p.add_argument('--shuffle-buffer', type=int, default=5000,
                   help='samples in the shuffle buffer of each shard reader')
    p.add_argument('--no-shuffle', action='store_true',
                   help='read the data in file order (no shard, buffer or sampler shuffle): '
                        'for comparisons and debugging')
    p.add_argument('--skip-corrupt', action='store_true',
                   help='skip unreadable shard members with a count in the log (default: stop '
                        'naming the shard and member)')
    p.add_argument('--val-data', default=None,
                   help='caption .json, .csv or shards (one sample per image with its captions: '
                        'tools/make_shards.py --group-captions) for Recall@K during training')
    p.add_argument('--val-split', default='val', help='split of a caption JSON --val-data')
    p.add_argument('--val-frequency', type=int, default=1, help='validate every N epochs')
    p.add_argument('--val-every-steps', type=int, default=None,
                   help='validate every N steps instead (and at the last step)')
    p.add_argument('--data-fraction', type=float, default=1.0, help='train on a seeded subset')
    p.add_argument('--no-augment', action='store_true', help='use the eval transform to train')
    p.add_argument('--method', default='vapt', choices=['vapt', 'vpt-deep', 'vpt-shallow',
                                                        *BASELINES],
                   help='prompts, or no prompts: head-only (train the image projection) or '
                        'full (train the whole image tower); the text tower stays frozen')
    p.add_argument('--prompt', nargs='*', default=[], metavar='KEY=VALUE',
                   help='more PromptConfig options, e.g. num_tokens=10 hidden_dim=8')
    p.add_argument('--train-extra', nargs='*', default=[], choices=EXTRAS,
                   help='also train these: logit_scale, proj, ln_post')
    p.add_argument('--batch-size', type=int, default=64, help='per process')
    p.add_argument('--accum-freq', '--accum-steps', dest='accum_freq', type=int, default=1,
                   help='micro-batches per optimizer step (contrastive over all of them)')
    p.add_argument('--grad-checkpointing', action='store_true',
                   help='recompute block activations in the backward pass (less memory)')
    p.add_argument('--epochs', type=int, default=10)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--wd', type=float, default=1e-4)
    p.add_argument('--generator-lr-mult', type=float, default=1.0,
                   help="VAPT's generators and projectors train at --lr times this")
    p.add_argument('--warmup', type=int, default=10, help='warm-up optimizer steps')
    p.add_argument('--precision', default='amp', choices=['amp', 'amp_bf16', 'fp32'],
                   help='AMP applies on CUDA only; CPU runs in fp32')
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--logs', '--logs-dir', dest='logs', default=None,
                   help='folder of run folders: the run is LOGS/NAME')
    p.add_argument('--name', default=None, help='the run folder\'s name in --logs')
    p.add_argument('--output', default=None,
                   help='the run folder (logs, checkpoint, weights) instead of --logs/--name')
    p.add_argument('--report-to', default='', choices=['', 'tensorboard'],
                   help='also write TensorBoard scalars to RUN/tensorboard')
    p.add_argument('--log-every', '--log-every-n-steps', dest='log_every', type=int, default=10)
    p.add_argument('--save-every', type=int, default=100, help='checkpoint every N steps')
    p.add_argument('--save-frequency', type=int, default=1,
                   help='and at the end of every N epochs')
    p.add_argument('--resume', default=None,
                   help="checkpoint file, or 'latest' (implied when torchrun restarts the workers)")
    p.add_argument('--dist-timeout', type=float, default=DIST_TIMEOUT_S,
                   help='seconds a collective waits for the other processes before it fails '
                        '(a rank that died or hangs)')
    p.add_argument('--exit-after-steps', type=int, default=None,
                   help='checkpoint and stop after N steps of this run (time-limited jobs)')
    args = p.parse_args()
    if args.output is None and not (args.logs and args.name):
        p.error('give the run folder: --logs DIR --name NAME (as open_clip) or --output DIR')
    if args.output is not None and (args.logs or args.name):
        p.error('--output is the run folder itself; give it or --logs/--name, not both')
    args.output = args.output or os.path.join(args.logs, args.name)
    if args.dataset_type == 'auto':
        args.dataset_type = 'webdataset' if is_shard_spec(args.train_data) else 'csv'
    if args.dataset_type == 'webdataset' and not args.train_num_samples:
        p.error('--dataset-type webdataset needs --train-num-samples (the samples of an epoch)')
    if args.dataset_type == 'webdataset' and args.data_fraction < 1.0:
        p.error('--data-fraction applies to a CSV or caption JSON; for shards lower '
                '--train-num-samples or list fewer shards')
    return args


def prompt_options(args: argparse.Namespace) -> Dict[str, Any]:
    options: Dict[str, Any] = {'method': args.method}
    return {**options, **parse_key_values(args.prompt)}


def all_mean(value: torch.Tensor, world_size: int) -> float:
    if world_size > 1:
        value = value.clone()
        dist.all_reduce(value)
    return value.item() / world_size


def incomplete_checkpoint(error: IncompleteCheckpointError, own: bool) -> str:
    """``error``'s message and the ways on: start over, or resume from another file."""
    args, kept = sys.argv[1:], []
    while args:
        arg = args.pop(0)
        if arg == '--resume':
            args = args[1:]  # and its value
        elif not arg.startswith('--resume='):
            kept.append(arg)
    command = shlex.join([sys.argv[0], *kept])
    left = ('No complete checkpoint is left: the run folder keeps one, checkpoint.pt. '
            if own else '')
    return (f'--resume: {error}\n{left}To start over, run without --resume:\n'
            f'    python {command}\n'
            'To resume from a complete checkpoint elsewhere (e.g. in the original run folder):\n'
            f'    python {command} --resume OTHER/checkpoint.pt')


def main() -> int:
    """Train; returns the exit code."""
    args = parse_args()
    catch_stop_signals()
    rank, world_size, device = init_distributed(args.device, args.dist_timeout)
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format='%(asctime)s %(message)s', datefmt='%H:%M:%S')
    log = logging.getLogger('train_retrieval')
    os.makedirs(args.output, exist_ok=True)
    use_amp = device.type == 'cuda' and args.precision != 'fp32'
    if device.type != 'cuda' and args.precision != 'fp32':
        log.info('precision %s needs CUDA; running in fp32 on %s', args.precision, device)

    if args.dataset_type == 'webdataset':  # before the model: a wrong pattern fails at once
        try:
            urls = expand_shards(args.train_data)
        except FileNotFoundError as error:
            raise SystemExit(f'--train-data: {error}') from error

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    model, preprocess_train, preprocess_val, tokenizer = create_clip(
        args.model, args.pretrained, args.model_config, trunk_weights=args.trunk_weights)
    if args.method in BASELINES:
        if args.prompt:
            raise SystemExit(f'--prompt does not apply to --method {args.method}.')
        apply_baseline(model, args.method, trainable=args.train_extra)
    else:
        apply_vapt(model, trainable=args.train_extra, **prompt_options(args))
    if args.grad_checkpointing:
        model.set_grad_checkpointing(True)
    model.to(device)
    log.info('%s', count_parameters(model))

    transform = preprocess_val if args.no_augment else preprocess_train
    pin = device.type == 'cuda'
    if args.dataset_type == 'webdataset':
        data = ShardBatches(urls, args.train_num_samples, transform,
                            tokenizer, args.batch_size, args.accum_freq, rank, world_size,
                            args.seed, args.workers, 0 if args.no_shuffle else args.shuffle_buffer,
                            args.skip_corrupt, pin)
    else:
        pairs = load_captions(args.train_data, args.split, args.csv_separator, args.csv_img_key,
                              args.csv_caption_key, args.image_root).pairs()
        if args.data_fraction < 1.0:
            keep = random.Random(args.seed).sample(range(len(pairs)),
                                                   round(len(pairs) * args.data_fraction))
            pairs = [pairs[i] for i in sorted(keep)]
        data = PairBatches(pairs, transform, tokenizer, args.batch_size, args.accum_freq, rank,
                           world_size, args.seed, args.workers, not args.no_shuffle, pin)
    steps_per_epoch = data.steps_per_epoch
    if steps_per_epoch == 0:
        raise SystemExit(f'{data.description}: no full step of {world_size} x '
                         f'{args.batch_size} x {args.accum_freq}; use a smaller batch.')
    total_steps = steps_per_epoch * args.epochs
    try:
        validation = (Validation(args.val_data, args.val_split, preprocess_val, tokenizer, device,
                                 args.batch_size, args.workers, args.csv_separator,
                                 args.csv_img_key, args.csv_caption_key, args.image_root,
                                 args.skip_corrupt) if args.val_data else None)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f'--val-data: {error}') from error
    val_steps = args.val_every_steps or steps_per_epoch * args.val_frequency
    save_steps = steps_per_epoch * args.save_frequency

    optimizer = torch.optim.AdamW(param_groups(model, args.wd, args.generator_lr_mult),
                                  lr=args.lr)
    scheduler = scaled_schedule(optimizer, cosine_lr(optimizer, args.lr, args.warmup, total_steps))
    scaler = torch.amp.GradScaler('cuda') if use_amp and args.precision == 'amp' else None
    amp_dtype = torch.bfloat16 if args.precision == 'amp_bf16' else torch.float16

    step = 0
    global_batch = world_size * args.batch_size * args.accum_freq
    split = [world_size, max(1, args.workers)]  # who reads which shard
    best: Dict[str, Any] = {'mean_recall': None, 'step': None, 'validated': None}
    checkpoint_path = os.path.join(args.output, 'checkpoint.pt')
    resume = checkpoint_path if args.resume == 'latest' else args.resume
    if restart_count():
        log.info('restart %d of the workers by torchrun: resuming from %s', restart_count(),
                 checkpoint_path if os.path.isfile(checkpoint_path) else 'the start (none yet)')
        if resume is None and os.path.isfile(checkpoint_path):
            resume = checkpoint_path
    if resume and not os.path.isfile(resume):
        raise SystemExit(f'--resume: no checkpoint file {resume}.')
    if resume:
        try:
            state = load_checkpoint(resume, model, optimizer, scaler)
        except IncompleteCheckpointError as error:
            raise SystemExit(incomplete_checkpoint(error, resume == checkpoint_path)) from None
        step = state['step']
        best.update(state.get('best') or {})
        note = world_size_note(len(state['rng']), world_size, state.get('global_batch'),
                               global_batch)
        if note:
            log.warning('%s', note)
        if args.dataset_type == 'webdataset' and state.get('data_split', split) != split:
            log.warning('the shards were read by %d process(es) x %d worker(s), now by %d x %d: '
                        'the rest of this epoch reads another sequence of samples (some may '
                        'repeat samples already seen in it, others be left out); later epochs '
                        'read every shard again.', *state['data_split'], *split)
        if len(state['rng']) == world_size:
            set_rng_state(state['rng'][rank])
        else:
            torch.manual_seed(args.seed + rank + step)
        epoch, done = divmod(step, steps_per_epoch)
        log.info('resumed from %s at step %d (epoch %d, after %d of its %d samples; %d samples '
                 'seen in all)', resume, step, epoch, done * global_batch,
                 steps_per_epoch * global_batch, step * global_batch)
    else:
        torch.manual_seed(args.seed + rank)

    ddp = (DistributedDataParallel(model, device_ids=[device] if device.type == 'cuda' else None)
           if world_size > 1 else model)
    loss_fn = ClipLoss(local_loss=True, gather_with_grad=True, rank=rank, world_size=world_size)
    run_log = RunLog(args.output, rank, total_steps, global_batch, step,
                     bool(resume or restart_count()), args.report_to == 'tensorboard')
    saved_step = step if resume == checkpoint_path else None  # in checkpoint_path

    def checkpoint() -> bool:
        """Write the checkpoint of ``step``; False on every rank if rank 0 could not."""
        nonlocal saved_step
        states: List[Dict[str, Any]] = [rng_state()]
        if world_size > 1:
            states = [None] * world_size
            dist.all_gather_object(states, rng_state())
        error = ''
        if rank == 0:
            try:
                save_checkpoint(checkpoint_path, model, optimizer, scaler, step, states,
                                global_batch, {'samples_seen': step * global_batch,
                                               'data_split': split, 'best': best})
            except Exception as exc:  # full disk, quota, permissions: any failed write
                error = f'{type(exc).__name__}: {exc}'
        if world_size > 1:
            shared = [error]
            dist.broadcast_object_list(shared, src=0)  # all ranks stop, or none
            error = shared[0]
        if error:
            kept = (f'{checkpoint_path} holds no checkpoint yet' if saved_step is None else
                    f'{checkpoint_path} still holds step {saved_step}, the newest complete one')
            log.error('could not write the checkpoint %s at step %d (%s); training stopped '
                      'and %s. Free disk space or fix the folder\'s permissions, then '
                      '--resume latest.', checkpoint_path, step, error, kept)
            return False
        saved_step = step
        return True

    def validate() -> None:
        """Recall@K on --val-data (rank 0; the others wait for its result), the best kept."""
        tic = time.time()
        metrics: List[Any] = [None]
        if rank == 0:
            # Embedding draws no random numbers the run would miss: the RNG is left alone.
            with torch.random.fork_rng(devices=[device] if device.type == 'cuda' else []):
                metrics[0] = validation(model)
        if world_size > 1:
            dist.broadcast_object_list(metrics, src=0)
        model.eval()
        model.visual.train()
        is_best = best['mean_recall'] is None or metrics[0]['mean_recall'] > best['mean_recall']
        if is_best:
            best.update(mean_recall=metrics[0]['mean_recall'], step=step)
            if rank == 0:
                save_vapt(model, os.path.join(args.output, 'best.safetensors'),
                          metadata={'open_clip_model': args.model, 'step': str(step),
                                    'mean_recall': str(metrics[0]['mean_recall'])})
        best['validated'] = step
        run_log.validation(step, epoch, metrics[0], is_best, time.time() - tic)

    def validation_due() -> bool:
        return (validation is not None and step > 0 and best['validated'] != step
                and (step % val_steps == 0 or step == total_steps))

    model.eval()
    model.visual.train()  # the prompts train; frozen towers stay in eval mode
    log.info('%s, %d steps, global batch %d', data.description, total_steps, global_batch)
    if validation is not None:
        log.info('validation on %s (%s) every %d steps', args.val_data, validation.description,
                 val_steps)
    epoch = max(step - 1, 0) // steps_per_epoch
    if validation_due():  # stopped before the validation of its last step
        validate()
    run_steps, signum, code = 0, 0, 0
    limit = total_steps if args.exit_after_steps is None else args.exit_after_steps
    while step < total_steps and run_steps < limit and not (signum or code):
        epoch, done = divmod(step, steps_per_epoch)
        loader = iter(data.epoch(epoch, done))
        for _ in range(done, steps_per_epoch):
            lr = scheduler(step)
            tic = time.time()
            batches = [tuple(t.to(device, non_blocking=True) for t in next(loader))
                       for _ in range(args.accum_freq)]
            run_log.waited(time.time() - tic)
            total = contrastive_backward(
                ddp, loss_fn, batches,
                backward=lambda loss: (scaler.scale(loss) if scaler else loss).backward(),
                autocast=lambda: torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp),
                no_sync=ddp.no_sync if world_size > 1 else contextlib.nullcontext)
            mean_loss = all_mean(total, world_size)  # the same on every rank
            if not math.isfinite(mean_loss):  # on every rank: the loss is all-reduced
                log.error('the loss is %s at step %d; stopped before its optimizer step, '
                          'checkpoints already written (%s) are kept. Lower --lr or check the '
                          'data, then --resume latest.', mean_loss, step + 1, checkpoint_path)
                code = 1
                break
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if 'logit_scale' in args.train_extra:
                with torch.no_grad():
                    model.logit_scale.clamp_(0, 4.6052)  # ln(100), as open_clip
            step += 1
            run_steps += 1
            run_log.step(step, epoch, mean_loss, lr, args.log_every)
            signum = agree_stop()  # SIGTERM/SIGUSR1 on any rank: all stop after this step
            stop = run_steps >= limit or signum
            validated = validation_due() and not signum  # a stop leaves it to the resumed run
            if validated:
                validate()
            if ((step % args.save_every == 0 or step % save_steps == 0 or step == total_steps
                 or stop or validated) and not checkpoint()):
                code = EXIT_SAVE_FAILED
            if stop or code:
                break
        del loader  # its workers end before the next epoch's start

    ignore_stop_signals()  # training is over: leave with its code, not killed by a late signal
    run_log.close()
    if rank == 0 and step == total_steps and not code:
        path = os.path.join(args.output, 'vapt.safetensors')
        save_vapt(model, path, metadata={'open_clip_model': args.model,
                                         'pretrained': str(args.pretrained)})
        log.info('saved the trainable weights to %s', path)
        if best['step'] is not None:
            log.info('the best validation: mean recall %.2f%% at step %d, in %s',
                     100 * best['mean_recall'], best['step'],
                     os.path.join(args.output, 'best.safetensors'))
    if world_size > 1:
        # DDP's reducer must not outlive the process group: destroyed from there, gloo's
        # group waits for its worker thread while holding the GIL that thread may need.
        del ddp
        gc.collect()
        dist.barrier()  # no rank leaves while another still saves or logs
        dist.destroy_process_group()
    if signum and step < total_steps and not code:
        log.warning('%s: stopped after step %d, saved in %s; continue with --resume latest '
                    '(exit code %d).', signal_name(signum), step, checkpoint_path, EXIT_PREEMPTED)
        return EXIT_PREEMPTED
    return code


if __name__ == '__main__':
    sys.exit(main())
