"""Paths users may have scripted before issue #28 moved the study runners to ``studies/``
and the GPU check to ``tools/gpu_check/``: the old path says where, exits 2, runs nothing."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNNERS = ['sample_efficiency_seg', 'sample_efficiency_retrieval', 'select_lr_seg']


@pytest.mark.parametrize('name', RUNNERS)
def test_an_old_study_runner_path_prints_the_new_command(name, tmp_path):
    assert (ROOT / 'studies' / f'{name}.py').is_file()
    result = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / f'{name}.py'), '--out-dir',
                             'a b', '--quick'], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and result.stdout == ''
    assert f"python studies/{name}.py --out-dir 'a b' --quick" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_old_gpu_check_path_prints_the_new_command(tmp_path):
    assert (ROOT / 'tools' / 'gpu_check' / 'device_check.sh').is_file()
    result = subprocess.run(['bash', str(ROOT / 'benchmarks' / 'device_check.sh'), '--dry-run',
                             '--out', 'x.json'], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and list(tmp_path.iterdir()) == []
    assert 'run: bash tools/gpu_check/device_check.sh --dry-run --out x.json' in result.stderr


def test_benchmarks_holds_cost_benchmarks_and_the_moved_paths_only():
    names = {p.name for p in (ROOT / 'benchmarks').iterdir() if p.name != '__pycache__'}
    moved = {f'{name}.py' for name in RUNNERS} | {'device_check.sh'}
    assert {n for n in names if not n.startswith('bench_')} == {'rss.py'} | moved
    for name in moved:  # stubs: a few lines, no code of the tool
        assert len((ROOT / 'benchmarks' / name).read_text().splitlines()) <= 8
