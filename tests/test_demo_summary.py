"""tools/analysis_tools/demo_summary.py: the demo's table from its files, and the run
environment (threads per step, torch's threads, BLAS, CPU) that tells two machines apart."""
import importlib.util
import json
import sys

import pytest
import torch
from safetensors.torch import save_file

from seg_helpers import ROOT

spec = importlib.util.spec_from_file_location(
    'demo_summary', ROOT / 'tools' / 'analysis_tools' / 'demo_summary.py')
demo_summary = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_summary)


def fake_demo(root):
    """The files tools/demo.sh leaves, with small tensors and known metrics."""
    for method, (prompts, miou) in {'head-only': (0, 26.43), 'vapt': (30, 16.45)}.items():
        run = root / 'seg' / method
        (run / 'test' / '20260101_000000').mkdir(parents=True)
        state = {'decode_head.conv_seg.weight': torch.zeros(11, 4),
                 'decode_head.conv_seg.bias': torch.zeros(11)}
        if prompts:
            state['backbone.encoder.prompts.static'] = torch.zeros(prompts)
        torch.save({'state_dict': state}, run / 'iter_200.pth')
        (run / 'test' / '20260101_000000' / '20260101_000000.json').write_text(
            json.dumps({'aAcc': 90.0, 'mIoU': miou}) + '\n')
    recalls = {'zero-shot': 0.3807, 'vapt-untrained': 0.27, 'head-only': 0.3853, 'vapt': 0.309}
    for method, recall in recalls.items():
        (root / 'retrieval').mkdir(exist_ok=True)
        (root / 'retrieval' / f'recall_{method}.json').write_text(
            json.dumps({'metrics': {'mean_recall': recall}}))
    for method, size in {'head-only': 48, 'vapt': 72}.items():
        (root / 'retrieval' / method).mkdir()
        save_file({'proj': torch.zeros(size)},
                  str(root / 'retrieval' / method / 'vapt.safetensors'))
    return root


def test_summary_names_the_threads_blas_and_cpu_it_ran_with(tmp_path, monkeypatch):
    demo = fake_demo(tmp_path)
    threads = torch.get_num_threads()
    monkeypatch.setattr(sys, 'argv', ['demo_summary.py', str(demo), '--threads', 'lit=1',
                                      'seg/head-only=1', 'seg/vapt=2', 'retrieval=2'])
    try:
        torch.set_num_threads(3)
        demo_summary.main()
    finally:
        torch.set_num_threads(threads)
    text = (demo / 'summary.md').read_text()
    assert '| segmentation (val mIoU) | vapt | 85 (30 prompts) | 16.45 |' in text
    assert '| retrieval (test mean recall) | head-only | 48 | 38.53 |' in text
    env = json.loads((demo / 'summary.json').read_text())['environment']
    assert env['step_threads'] == {'lit': 1, 'seg/head-only': 1, 'seg/vapt': 2, 'retrieval': 2}
    assert env['torch_threads'] == 3 and env['torch'] == torch.__version__
    # MKL builds report BLAS_INFO=mkl; others name their BLAS (OpenBLAS: open).
    assert env['blas'] != 'unknown' and (env['blas'] == 'mkl') == torch.backends.mkl.is_available()
    assert env['parallel_backend'] in torch.__config__.parallel_info()
    assert env['cpu'] and env['cpu_count'] >= 1
    assert ('threads per step: lit 1, seg/head-only 1, seg/vapt 2, retrieval 2; '
            f"torch {torch.__version__} (3 intra-op threads here, {env['parallel_backend']} "
            f"backend, BLAS {env['blas']})") in text


def test_a_bad_thread_count_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['demo_summary.py', str(tmp_path), '--threads', 'vapt=0'])
    with pytest.raises(SystemExit):
        demo_summary.main()
    assert "'vapt=0': give STEP=N, N a positive thread count" in capsys.readouterr().err


def test_demo_sh_passes_the_threads_of_every_step():
    script = (ROOT / 'tools' / 'demo.sh').read_text()
    call = script[script.index('demo_summary.py'):].split('\n\n')[0]
    assert all(step in call for step in ('lit=1', 'seg/head-only=1', '"seg/vapt=$threads"',
                                         '"retrieval=$threads"'))
