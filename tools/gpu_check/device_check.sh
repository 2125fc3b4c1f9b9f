#!/usr/bin/env bash
# One GPU check of vapt_mm (issue #18): the CUDA-only paths, bench_cost.py on the GPU and
# 50 iterations of configs/vapt_ade20k.py with --amp, in one JSON summary (set-up included,
# about 8 minutes on one H200; the steps are in tools/gpu_check/device_check.py).
#
# Here, once:   bash tools/gpu_check/device_wheels.sh        # the wheels into .device_wheels/
# On the GPU machine (the device tool's run, from the repository root):
#   command: bash tools/gpu_check/device_check.sh --out $OUT/device_check.json
#   carry:   [".device_wheels"]      timeout_s: 540
# Without a GPU (tests/test_device_check.py runs this):
#   bash tools/gpu_check/device_check.sh --dry-run --out /tmp/device_check.json
#
# Options go to device_check.py: --budget SECONDS (470) for all steps, --mmcv-limit
# SECONDS (300) for the mmcv build, --work DIR for the scratch files. PYTHON picks the
# interpreter (default: python3, the one that holds torch on the GPU machine).
set -Eeuo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
exec "${PYTHON:-python3}" tools/gpu_check/device_check.py "$@"
