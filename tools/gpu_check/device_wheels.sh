#!/usr/bin/env bash
# Download, here, the Python packages tools/gpu_check/device_check.sh installs on the GPU machine.
#
#   bash tools/gpu_check/device_wheels.sh [DEST]      # DEST: .device_wheels (ignored by git)
#
# The GPU machine (Python 3.12, no package registry) has torch, torchvision, timm, onnx,
# onnxruntime and the packages in DEVICE_HAS below, but no mmcv, mmengine, mmsegmentation
# or open_clip. pip's resolver resolves the tested stack (requirements/constraints.txt)
# for CPython 3.12 on manylinux x86_64 (torch, which the machine has, left unpinned); the
# closure of what the machine lacks is kept (a package it has ends the walk) and downloaded
# as wheels, with the mmcv sdist that device_check.sh builds there and setuptools<81
# (mmcv's setup.py imports pkg_resources).
# DEST gets SHA256SUMS and must stay well under the 64 MiB a device run carries.
set -Eeuo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="${1:-$repo/.device_wheels}"
python="${PYTHON:-$repo/.venv/bin/python}"  # with torch: the mmcv sdist's metadata imports it
constraints="$repo/requirements/constraints.txt"
limit_mib=32
# The machine's image, as tools/gpu_check/device_check.sh expects it (KINDS.md of the device
# tool, read 2026-11-17): packages already there end the dependency walk. mmengine asks
# for opencv-python; the machine's opencv-python-headless provides the same cv2.
DEVICE_HAS="absl-py accelerate certifi charset-normalizer click cloudpickle contourpy cycler
filelock fonttools fsspec huggingface-hub idna jinja2 kiwisolver markdown-it-py markupsafe
matplotlib mdurl mpmath networkx ninja numpy onnx onnxruntime opencv-python-headless opencv-python
packaging pillow pip protobuf psutil pygments pyparsing python-dateutil pyyaml regex requests
rich safetensors scipy setuptools six sympy timm torch torchvision tqdm typing-extensions
urllib3 wheel"
roots=(mmengine mmsegmentation open_clip_torch ftfy addict yapf webdataset braceexpand)  # mmcv's, vapt_mm's
target=(--python-version 3.12 --implementation cp --abi cp312 --only-binary=:all:
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux_2_28_x86_64)
pip_() { "$python" -m pip --isolated --disable-pip-version-check "$@"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "==> resolving ${roots[*]} for CPython 3.12 (constraints: $constraints)"
pip_ install -q --dry-run --ignore-installed --target "$work/target" --report "$work/report.json" \
    "${target[@]}" -c <(grep -v -E '^(mmcv|torch|torchvision)==' "$constraints") "${roots[@]}"

DEVICE_HAS="$DEVICE_HAS" ROOTS="${roots[*]}" \
    "$python" - "$work/report.json" > "$work/missing" <<'PY'
import json, os, re, sys
from packaging.markers import default_environment
from packaging.requirements import Requirement

def norm(name):
    return re.sub(r'[-_.]+', '-', name).lower()

env = {**default_environment(), 'python_version': '3.12', 'python_full_version': '3.12.3',
       'sys_platform': 'linux', 'platform_system': 'Linux', 'platform_machine': 'x86_64',
       'implementation_name': 'cpython', 'platform_python_implementation': 'CPython',
       'os_name': 'posix', 'extra': ''}
report = json.load(open(sys.argv[1]))
resolved = {norm(i['metadata']['name']): i['metadata'] for i in report['install']}
has = {norm(n) for n in os.environ['DEVICE_HAS'].split()}
todo, keep = [norm(r) for r in os.environ['ROOTS'].split()], {}
while todo:
    name = todo.pop()
    if name in has or name in keep:
        continue
    keep[name] = resolved[name]['version']
    for spec in resolved[name].get('requires_dist', []):
        req = Requirement(spec)
        if req.marker is None or req.marker.evaluate(env):
            todo.append(norm(req.name))
print('\n'.join(f'{n}=={v}' for n, v in sorted(keep.items())))
PY
echo "==> the machine lacks: $(tr '\n' ' ' < "$work/missing")"

rm -rf "$dest"
mkdir -p "$dest"
pip_ download -q --no-deps -d "$dest" "${target[@]}" $(cat "$work/missing") 'setuptools<81'
mmcv="$(sed -n 's/^mmcv==//p' "$constraints")"
# The sdist's metadata step imports torch, so it runs in this environment (no isolation).
pip_ download -q --no-deps --no-binary :all: --no-build-isolation -d "$dest" "mmcv==$mmcv"
(cd "$dest" && sha256sum -- * > SHA256SUMS)
total=$(du -sb "$dest" | cut -f1)
ls -l "$dest"
echo "==> $dest: $((total / 1024)) KiB in all"
if (( total > limit_mib * 1024 * 1024 )); then
    echo "device_wheels.sh: more than $limit_mib MiB; a device run carries 64 MiB in all." >&2
    exit 1
fi
