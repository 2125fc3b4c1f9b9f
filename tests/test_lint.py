"""The code follows the lint settings in setup.cfg ([flake8])."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_flake8_is_clean():
    result = subprocess.run([sys.executable, '-m', 'flake8', 'vapt_mm', 'tools', 'tests',
                             'benchmarks', 'studies', 'configs'], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_slow_files_scheduled_first_exist():
    from conftest import SLOW_FILES
    tests = Path(__file__).resolve().parent
    assert [name for name in SLOW_FILES if not (tests / name).is_file()] == []
