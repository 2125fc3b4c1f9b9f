"""The steps of tools/gpu_check/device_check.sh: one GPU check of vapt_mm, one JSON summary.

On the GPU machine the carried wheels are installed into a target folder, then mmcv is
built with CUDA ops for Hopper in the background (on cores 4-15 while it compiles) while
the steps that need no mmcv run on cores 0-3: the fused generator on the GPU, open_clip
retrieval training in ``amp`` and ``amp_bf16``, NCCL with two processes on the one GPU
(all_reduce, DDP gradients, SyncBN statistics) and bench_cost.py at 224 (batch 32) and 512
(batch 8), all methods. With mmcv built: 50 iterations of configs/vapt_ade20k.py with
``--amp`` on generated ADE20K-layout data, SyncBN training in two NCCL processes, and the
UPerNet segmentors' inference (whole and slide). NCCL refuses two ranks on one GPU
("Duplicate GPU detected"); the ranks are then given their own NCCL_HOSTID (the socket
transport). Every step has a time limit; one that would start after the budget is skipped,
and the JSON says so, as it says what ``--dry-run`` (the same steps on the CPU at tiny
sizes) skipped for want of CUDA.

    python tools/gpu_check/device_check.py --out FILE [--dry-run] [--budget 470]
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WHEELS = os.path.join(ROOT, '.device_wheels')
METHODS = ['head-only', 'vpt-deep', 'vapt', 'full', 'vapt-by-operator']
DEFAULT_BUDGET = 470.0
NO_CUDA = 'needs CUDA'
Record = Dict[str, Any]


def tail(text: str, lines: int = 15) -> str:
    return '\n'.join(text.strip().splitlines()[-lines:])


def pinned(cores: Optional[set]) -> Optional[Callable[[], None]]:
    """A preexec_fn that keeps a child on ``cores`` (where the kernel lets it)."""
    def pin() -> None:
        try:
            os.sched_setaffinity(0, cores)
        except OSError:
            pass
    return pin if cores else None


class Check:
    """Runs the steps as subprocesses within the time budget and collects the summary."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dry: bool = args.dry_run
        self.start = time.time()
        self.work: str = args.work or tempfile.mkdtemp(prefix='vapt_device_check_')
        self.site = os.path.join(self.work, 'site')
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in [ROOT, self.site, os.environ.get('PYTHONPATH', '')] if p))
        self.cores: Optional[set] = None  # the steps' cores while mmcv compiles
        self.output = ''  # of the last step
        self.nccl_modes = ['plain', 'hostid'] if cuda_available() else ['plain']
        self.summary: Record = {'dry_run': self.dry, 'budget_s': args.budget, 'work': self.work,
                                'steps': {}, 'skipped': {}}

    def left(self) -> float:
        return self.args.budget - (time.time() - self.start)

    def record(self, name: str, record: Record) -> Record:
        self.summary['steps'][name] = record
        if record['status'] == 'skipped':
            self.summary['skipped'][name] = record['reason']
        print(f"[{time.time() - self.start:6.1f} s] {name}: {record['status']} "
              f"{record.get('reason', '')}", flush=True)
        return record

    def skip(self, name: str, reason: str) -> Record:
        return self.record(name, {'status': 'skipped', 'reason': reason})

    def run(self, name: str, cmd: List[str], limit: float,
            parse: Callable[[str], Record] = lambda out: {},
            env: Optional[Dict[str, str]] = None) -> Record:
        """One step: ``cmd`` (run in the repository) within ``limit`` seconds and the budget.

        Limits are for the default budget; a larger ``--budget`` (a slow or busy machine)
        stretches them alike."""
        limit = min(limit * max(1.0, self.args.budget / DEFAULT_BUDGET), self.left())
        if limit < 10:
            return self.skip(name, 'the time budget is spent')
        started = time.time()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env or self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                preexec_fn=pinned(self.cores))
        try:
            out, _ = proc.communicate(timeout=limit)
            code: Any = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the step's own children (ranks, workers) too
            out, _ = proc.communicate()
            code = f'timed out after {limit:.0f} s'
        self.output = out
        record: Record = {'seconds': round(time.time() - started, 1)}
        if code == 0:
            try:
                record.update(status='ok', **parse(out))
            except (AssertionError, KeyError, ValueError, IndexError, OSError) as error:
                record.update(status='failed', reason=f'output check: {error!r}', log=tail(out))
        else:
            record.update(status='failed', reason=f'exit {code}', log=tail(out))
        return self.record(name, record)

    def python(self, *args: str) -> List[str]:
        return [sys.executable, *args]


def cuda_available() -> bool:
    import torch  # here, not at the top: the two-rank launcher starts without it
    return torch.cuda.is_available()


def environment() -> Record:
    import torch
    info: Record = {'python': sys.version.split()[0], 'torch': torch.__version__,
                    'cuda': torch.version.cuda, 'cuda_available': torch.cuda.is_available(),
                    'cores': os.cpu_count(), 'load_average': os.getloadavg()[0]}
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
    if shutil.which('nvcc'):
        info['nvcc'] = tail(subprocess.run(['nvcc', '--version'], capture_output=True,
                                           text=True).stdout, 1)
    return info


def install_wheels(check: Check) -> None:
    """The carried wheels, checked against SHA256SUMS, into the steps' target folder."""
    if check.dry:
        check.skip('setup', 'dry run: the packages of this environment are used')
        return
    try:
        with open(os.path.join(WHEELS, 'SHA256SUMS')) as f:
            damaged = [name for digest, name in (line.split() for line in f)
                       if hashlib.sha256(open(os.path.join(WHEELS, name), 'rb').read()
                                         ).hexdigest() != digest]
    except OSError as error:
        damaged = [f'{error!r} (carry .device_wheels, made by device_wheels.sh)']
    if damaged:
        check.record('setup', {'status': 'failed', 'reason': f'carried wheels: {damaged}'})
        return
    wheels = sorted(glob.glob(os.path.join(WHEELS, '*.whl')))
    check.run('setup', check.python('-m', 'pip', 'install', '-q', '--no-index', '--no-deps',
                                    '--disable-pip-version-check', '--target', check.site,
                                    *wheels), 120,
              lambda out: {'wheels': len(wheels), 'target': check.site})


def library_headers() -> List[str]:
    """The CUDA library headers of torch's pip packages (nvidia/*/include), when the
    toolkit lacks them (torch's ATen/cuda headers include cusparse.h, cublas_v2.h)."""
    import torch
    from torch.utils.cpp_extension import CUDA_HOME
    if CUDA_HOME and os.path.exists(os.path.join(CUDA_HOME, 'include', 'cusparse.h')):
        return []
    site = os.path.dirname(os.path.dirname(torch.__file__))
    return sorted(glob.glob(os.path.join(site, 'nvidia', '*', 'include')))


def start_mmcv_build(check: Check) -> Optional[Record]:
    """Unpack the carried mmcv sdist and build its ops in place, in the background."""
    if check.dry:
        check.skip('mmcv_build', f'{NO_CUDA}: the dry run uses the installed mmcv')
        return None
    sdists = glob.glob(os.path.join(WHEELS, 'mmcv-*.tar.gz'))
    if not sdists:
        check.skip('mmcv_build', 'no mmcv sdist in .device_wheels (run device_wheels.sh)')
        return None
    with tarfile.open(sdists[0]) as archive:
        archive.extractall(check.work, filter='data')
    source = os.path.join(check.work, os.path.basename(sdists[0])[:-len('.tar.gz')])
    # ninja (parallel compiles) sits next to the interpreter, which may not be on PATH.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get('PATH', '')])
    env = dict(check.env, PATH=path, MMCV_WITH_OPS='1', FORCE_CUDA='1',
               TORCH_CUDA_ARCH_LIST='9.0', MAX_JOBS='16')
    headers = library_headers()
    if headers:
        env['CPATH'] = os.pathsep.join(filter(None, [*headers, os.environ.get('CPATH')]))
    cores = set(range(4, os.cpu_count() or 1)) or None
    log = open(os.path.join(check.work, 'mmcv_build.log'), 'w')
    proc = subprocess.Popen(check.python('setup.py', 'build_ext', '--inplace'), cwd=source,
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=pinned(cores))
    check.cores = set(range(4)) if cores else None
    print(f'[{time.time() - check.start:6.1f} s] mmcv_build: started', flush=True)
    return {'proc': proc, 'source': source, 'log': log.name, 'started': time.time()}


def finish_mmcv_build(check: Check, build: Optional[Record]) -> bool:
    """Wait for the build within its limit; a built mmcv joins the steps' PYTHONPATH."""
    if build is None:
        return check.dry
    wait = min(check.args.mmcv_limit - (time.time() - build['started']), check.left() - 150)
    try:
        code = build['proc'].wait(timeout=max(1.0, wait))
    except subprocess.TimeoutExpired:
        os.killpg(build['proc'].pid, signal.SIGKILL)
        code = f"stopped after {time.time() - build['started']:.0f} s (--mmcv-limit, budget)"
    check.cores = None
    record: Record = {'seconds': round(time.time() - build['started'], 1), 'cuda_arch': '9.0',
                      'max_jobs': 16}
    with open(build['log']) as f:
        log = f.read()
    if code != 0:
        check.record('mmcv_build', {**record, 'status': 'failed', 'reason': f'exit {code}',
                                    'log': tail(log)})
        return False
    check.env['PYTHONPATH'] = os.pathsep.join([build['source'], check.env['PYTHONPATH']])
    probe = subprocess.run(check.python('-c', 'import mmcv, mmcv.ops, mmseg; '
                                        'print(mmcv.__version__, mmseg.__version__)'),
                           env=check.env, capture_output=True, text=True)
    status = 'ok' if probe.returncode == 0 else 'failed'
    check.record('mmcv_build', {**record, 'status': status,
                                'import': tail(probe.stdout + probe.stderr, 3)})
    return status == 'ok'


CORE_SCRIPT = r'''
import json, torch
from vapt_mm.core import PromptGenerator
device = 'cuda' if torch.cuda.is_available() else 'cpu'
torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # exact fp32
torch.manual_seed(0)
dim, batch = (768, 8) if device == 'cuda' else (64, 2)  # the dry run: small
gen = PromptGenerator(dim, 10, (32, 32)).to(device).train()
torch.nn.init.normal_(gen.token_map.weight, std=0.1)
errors = {}
for grid in ((32, 32), (32, 43), (14, 14)):
    x = torch.randn(batch, grid[0] * grid[1], dim, device=device)
    for dtype in [torch.float32] + ([torch.bfloat16] if device == 'cuda' else []):
        outs = []
        for path in (gen.forward, gen.forward_by_operator):
            torch.manual_seed(1)  # the same Dropout2d masks
            with torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
                outs.append(path(x, grid).float())
        error = ((outs[0] - outs[1]).abs().max() / outs[1].abs().max()).item()
        errors[f'{grid[0]}x{grid[1]} {str(dtype)[6:]}'] = [error, 1e-5 if dtype == torch.float32
                                                           else 3e-2]
print(json.dumps({'device': device, 'relative_errors_and_limits': errors}))
'''


def core_parity(out: str) -> Record:
    result = json.loads(out.strip().splitlines()[-1])
    assert all(e < limit for e, limit in result['relative_errors_and_limits'].values()), result
    return result


def make_data(check: Check) -> Dict[str, str]:
    data = {'retrieval': os.path.join(check.work, 'demo_retrieval'),
            'ade': os.path.join(check.work, 'demo_ade20k')}
    check.run('data_retrieval', check.python(
        'tools/make_demo_retrieval.py', data['retrieval'], '--num-images',
        '20' if check.dry else '400', '--size', '32' if check.dry else '224'), 120)
    ade_size = ['96', '128'] if check.dry else ['512', '688']
    check.run('data_ade20k', check.python(
        'tools/make_demo_ade20k.py', data['ade'], '--train', '4' if check.dry else '16',
        '--val', '2', '--size', *ade_size), 120)
    return data


def retrieval(check: Check, precision: str, data: str) -> None:
    name = f'retrieval_{precision}'
    if check.dry and precision != 'amp':
        check.skip(name, f'{NO_CUDA} (the dry run trains the amp step, which falls back to fp32)')
        return
    out = os.path.join(check.work, name)
    model = (['--model', 'vapt-tiny-clip', '--model-config',
              os.path.join(ROOT, 'configs', 'retrieval', 'vapt-tiny-clip.json')]
             if check.dry else ['--model', 'ViT-B-16'])

    def parse(text: str) -> Record:
        with open(os.path.join(out, 'train_log.jsonl')) as f:
            log = [json.loads(line) for line in f]
        assert log and all(abs(entry['loss']) < 1e4 for entry in log), log
        return {'amp': 'needs CUDA; running in fp32' not in text, 'steps': log[-1]['step'],
                'loss': round(log[-1]['loss'], 4),
                'samples_per_s': round(log[-1]['samples_per_s'], 1)}
    check.run(name, check.python(
        'tools/train_retrieval.py', *model, '--train-data', os.path.join(data, 'train.csv'),
        '--output', out, '--precision', precision, '--batch-size', '8' if check.dry else '64',
        '--workers', '0' if check.dry else '4', '--epochs', '1', '--log-every', '1',
        '--exit-after-steps', '2' if check.dry else '10', '--prompt', 'num_tokens=10'),
        150, parse)


def two_ranks(check: Check, name: str, cmd: List[str], limit: float,
              parse: Callable[[str], Record]) -> Record:
    """``cmd`` as ranks 0 and 1 on the one GPU; NCCL_HOSTID per rank if NCCL refuses."""
    note = None
    for mode in check.nccl_modes:
        record = check.run(name, check.python(__file__, '--two-ranks', mode, '--', *cmd),
                           limit, parse)
        record['nccl_mode'] = mode
        if note:
            record['plain_nccl'] = note
        if record['status'] != 'failed' or 'Duplicate GPU' not in check.output:
            return record
        note = 'refused two ranks on one GPU (Duplicate GPU detected)'
        check.nccl_modes = [m for m in check.nccl_modes if m != mode]  # later steps too
    return record


def launch_two_ranks(mode: str, cmd: List[str]) -> int:
    """Run ``cmd`` twice, as RANK 0 and 1 with LOCAL_RANK 0 (the one GPU); rank 0's output."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    procs = []
    for rank in (0, 1):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK='0', WORLD_SIZE='2',
                   MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
        if mode == 'hostid':  # NCCL then sees two hosts and talks over the loopback socket
            env.update(NCCL_HOSTID=f'vapt-device-check-{rank}', NCCL_SOCKET_IFNAME='lo')
        procs.append(subprocess.Popen([sys.executable, *cmd], env=env,
                                      stdout=None if rank == 0 else subprocess.DEVNULL,
                                      stderr=None if rank == 0 else subprocess.STDOUT))
    while all(p.poll() is None for p in procs):
        time.sleep(0.5)
    if any(p.returncode for p in procs if p.returncode is not None):
        for p in procs:  # a rank that failed leaves the other waiting in a collective
            if p.poll() is None:
                p.kill()
    return max((p.wait() for p in procs), key=abs)


def nccl_worker() -> None:
    """One rank: all_reduce, DDP gradients and SyncBN statistics of a tiny prompted ViT."""
    import timm
    import torch
    import torch.distributed as dist

    from vapt_mm.core import PromptConfig, PromptedViT, freeze_except_prompts
    from vapt_mm.models.timm_vit import TimmViT
    cuda = torch.cuda.is_available()
    rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    if cuda:
        torch.cuda.set_device(0)
    dist.init_process_group('nccl' if cuda else 'gloo')
    device = torch.device('cuda', 0) if cuda else torch.device('cpu')
    torch.manual_seed(0)  # the same model on both ranks
    vit = timm.models.VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2,
                                        num_heads=2, num_classes=0)
    cfg = PromptConfig(num_tokens=4, prompt_dropout=0.0, conv_dropout=0.0,
                       projector_dropout=0.0)
    backbone = PromptedViT(TimmViT(vit), cfg, image_size=(32, 32))
    freeze_except_prompts(backbone)
    norm = torch.nn.SyncBatchNorm(32) if cuda else torch.nn.BatchNorm1d(32)
    model = torch.nn.ModuleDict({'backbone': backbone, 'norm': norm,
                                 'head': torch.nn.Linear(32, 5)}).to(device).train()

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.m['head'](self.m['norm'](self.m['backbone'](x)[:, 0]))
    ddp = torch.nn.parallel.DistributedDataParallel(Net(), device_ids=[0] if cuda else None)
    batches = [torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(r))
               for r in range(world)]
    ddp(batches[rank].to(device)).square().mean().backward()
    total = torch.tensor([rank + 1.0], device=device)
    dist.all_reduce(total)
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    gathered = [torch.empty_like(grads) for _ in range(world)]
    dist.all_gather(gathered, grads)
    result = {'backend': dist.get_backend(), 'world_size': world, 'all_reduce': total.item(),
              'grad_max_diff': max((g - gathered[0]).abs().max().item() for g in gathered)}
    with torch.no_grad():
        feats = [backbone(b.to(device))[:, 0] for b in batches]
    if cuda:  # SyncBN's running mean: momentum 0.1 times the mean of both ranks' batches
        result['syncbn_vs_both_ranks'] = (norm.running_mean - 0.1 * torch.cat(feats).mean(0)
                                          ).abs().max().item()
        result['syncbn_vs_own_batch'] = (norm.running_mean - 0.1 * feats[rank].mean(0)
                                         ).abs().max().item()
    dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        print(json.dumps(result))


def nccl_parse(out: str) -> Record:
    result = json.loads(out.strip().splitlines()[-1])
    assert result['all_reduce'] == 3.0 and result['grad_max_diff'] < 1e-6, result
    if 'syncbn_vs_both_ranks' in result:
        assert result['syncbn_vs_both_ranks'] < 1e-5 < result['syncbn_vs_own_batch'], result
    else:
        result['syncbn'] = f'{NO_CUDA} (gloo and BatchNorm on the CPU)'
    return result


def bench(check: Check, name: str, size: int, batch: int, segmentors: bool = False) -> None:
    """bench_cost.py: the classifier rows, or with ``segmentors`` only the UPerNet timing."""
    out = os.path.join(check.work, f'{name}.json')
    if check.dry:
        options = ['--device', 'cpu', '--threads', '1', '--arch', 'vit_tiny_patch16_224',
                   '--sizes', '32', '--batch', '2', '--steps', '1', '--methods', 'vpt-deep',
                   'vapt']
    else:
        options = ['--device', 'cuda', '--sizes', str(size), '--batch', str(batch),
                   '--steps', '5' if segmentors else '10', '--methods', *METHODS]
    options += ['--seg-only', '--seg-modes', 'whole', 'slide'] if segmentors else ['--seg-modes']

    def parse(text: str) -> Record:
        with open(out) as f:
            result = json.load(f)
        if segmentors:
            return {'segmentor': result['segmentor']}
        keys = ('step_s', 'step_ratio', 'infer_s', 'infer_ratio', 'peak_mem_MiB', 'trainable',
                'gflops')
        return {'rows': [{'method': r['method'], **{k: r[k] for k in keys}}
                         for r in result['rows']]}
    check.run(name, check.python('benchmarks/bench_cost.py', *options, '--json-out', out), 240,
              parse)


def train_seg(check: Check, name: str, data: str, iters: int, ranks: int) -> None:
    """tools/train.py on the generated ADE20K-layout data: iteration time and peak memory."""
    work_dir = os.path.join(check.work, name)
    config = 'configs/vapt_demo_tiny.py' if check.dry else 'configs/vapt_ade20k.py'
    options = [f'{loader}.dataset.data_root={data}'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    options += [f'train_cfg.max_iters={iters}', 'train_cfg.val_begin=100000',  # no validation
                f'default_hooks.logger.interval={max(1, iters // 5)}',
                'default_hooks.checkpoint.interval=100000']
    if not check.dry:
        options.append('model.backbone.init_cfg=None')  # random ViT-B: no weights file here
    amp = [] if check.dry else ['--amp']
    cmd = ['tools/train.py', config, '--work-dir', work_dir, *amp, '--cfg-options', *options]

    def parse(text: str) -> Record:
        [scalars] = glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json'))
        with open(scalars) as f:
            logs = [entry for entry in map(json.loads, f) if 'loss' in entry]  # training logs
        assert logs and logs[-1]['iter'] == iters, logs[-1:]
        times = [entry['time'] for entry in logs[1:] or logs]  # the first log has the warm-up
        record: Record = {'iters': iters, 'amp': bool(amp), 'ranks': ranks,
                          'iter_time_s': round(sorted(times)[len(times) // 2], 4),
                          'loss': round(logs[-1]['loss'], 4)}
        if 'memory' in logs[-1]:
            record['peak_memory_MB'] = max(entry['memory'] for entry in logs)
        if ranks > 1:
            assert 'Distributed training: True' in text, 'not distributed'
        return record
    if ranks == 1:
        check.run(name, check.python(*cmd), 240, parse)
    else:
        two_ranks(check, name, [*cmd, '--launcher', 'pytorch'], 240, parse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', help='the JSON summary')
    parser.add_argument('--dry-run', action='store_true', help='CPU, tiny sizes, no CUDA steps')
    parser.add_argument('--budget', type=float, default=DEFAULT_BUDGET,
                        help='seconds for all the steps')
    parser.add_argument('--mmcv-limit', type=float, default=300, help='seconds for the build')
    parser.add_argument('--work', help='scratch folder (default: a new temporary one)')
    parser.add_argument('--nccl-worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--two-ranks', choices=['plain', 'hostid'], help=argparse.SUPPRESS)
    parser.add_argument('cmd', nargs='*', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.nccl_worker:
        return nccl_worker()
    if args.two_ranks:
        sys.exit(launch_two_ranks(args.two_ranks, args.cmd))
    if not args.dry_run and not cuda_available():
        parser.error('no CUDA device: use --dry-run')
    check = Check(args)
    check.summary['env'] = environment()
    try:
        install_wheels(check)
        build = start_mmcv_build(check)
        data = make_data(check)
        check.run('core_parity', check.python('-c', CORE_SCRIPT), 120, core_parity)
        for precision in ('amp', 'amp_bf16'):
            retrieval(check, precision, data['retrieval'])
        two_ranks(check, 'nccl_2proc', [__file__, '--nccl-worker'], 120, nccl_parse)
        bench(check, 'bench_cost_224', 224, 32)
        if check.dry:
            check.skip('bench_cost_512', 'dry run: bench_cost_224 ran the same script')
        else:
            bench(check, 'bench_cost_512', 512, 8)
        mmseg = finish_mmcv_build(check, build)
        if mmseg:
            train_seg(check, 'ade20k_amp_50', data['ade'], 2 if check.dry else 50, ranks=1)
        else:
            check.skip('ade20k_amp_50', 'mmcv did not build')
        if check.dry:
            check.skip('syncbn_nccl_train', f'{NO_CUDA} (NCCL and SyncBN)')
            check.skip('bench_cost_512_segmentors', 'dry run: the ViT-B UPerNet segmentors '
                       'are too slow for it on the CPU')
        elif mmseg:
            train_seg(check, 'syncbn_nccl_train', data['ade'], 10, ranks=2)
            bench(check, 'bench_cost_512_segmentors', 512, 8, segmentors=True)
        else:
            check.skip('syncbn_nccl_train', 'mmcv did not build')
            check.skip('bench_cost_512_segmentors', 'mmcv did not build')
    finally:
        check.summary['total_s'] = round(time.time() - check.start, 1)
        failed = [n for n, r in check.summary['steps'].items() if r['status'] == 'failed']
        check.summary['failed'] = failed
        text = json.dumps(check.summary, indent=1)
        if args.out:
            with open(args.out, 'w') as f:
                f.write(text)
        print(text)
    sys.exit(1 if check.summary['failed'] else 0)


if __name__ == '__main__':
    main()
