"""tools/gpu_check/device_check.sh --dry-run: the GPU check's steps on the CPU at tiny sizes."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU_STEPS = {'data_retrieval', 'data_ade20k', 'core_parity', 'retrieval_amp', 'nccl_2proc',
             'bench_cost_224', 'ade20k_amp_50'}
CUDA_STEPS = {'mmcv_build', 'retrieval_amp_bf16', 'syncbn_nccl_train'}


def test_dry_run_runs_the_cpu_steps_and_names_what_needs_cuda(tmp_path):
    out = tmp_path / 'device_check.json'
    env = {**os.environ, 'PYTHON': sys.executable, 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '1'}
    # A large budget: the steps' time limits stretch with it on a slow, shared machine.
    result = subprocess.run(['bash', 'tools/gpu_check/device_check.sh', '--dry-run', '--budget',
                             '1800', '--out', str(out), '--work', str(tmp_path / 'work')],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads(out.read_text())
    steps = summary['steps']
    assert summary['dry_run'] and summary['failed'] == []
    assert {name for name, step in steps.items() if step['status'] == 'ok'} == CPU_STEPS
    assert set(summary['skipped']) == CUDA_STEPS | {'setup', 'bench_cost_512',
                                                    'bench_cost_512_segmentors'}
    assert all('needs CUDA' in summary['skipped'][name] for name in CUDA_STEPS)
    assert steps['retrieval_amp']['amp'] is False and steps['retrieval_amp']['steps'] == 2
    assert steps['nccl_2proc']['backend'] == 'gloo' and steps['nccl_2proc']['all_reduce'] == 3
    rows = {row['method']: row for row in steps['bench_cost_224']['rows']}
    assert rows['vpt-deep']['step_ratio'] == 1 and rows['vapt']['step_ratio'] > 0
    assert rows['vapt']['trainable'] < rows['vpt-deep']['trainable']
    assert steps['ade20k_amp_50']['iters'] == 2 and steps['ade20k_amp_50']['amp'] is False
    assert summary['env']['cuda_available'] is False
