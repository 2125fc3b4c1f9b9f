#!/usr/bin/env bash
# Multi-process VAPT training of an open_clip model with torchrun (NCCL on GPUs, gloo on CPU).
#   bash tools/dist_train_retrieval.sh NUM_PROCS [--max-restarts N] --model ViT-B-32 \
#       --train-data ... --output ...
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node. Signals and restarts:
# see tools/torchrun_options.sh (SHUTDOWN_TIMEOUT). Under SLURM: tools/slurm_train_retrieval.sh.
set -euo pipefail
if [[ $# -lt 1 ]]; then
    echo "usage: $0 NUM_PROCS [--max-restarts N] [train_retrieval.py arguments]" >&2
    exit 2
fi
NPROC=$1
shift
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON=${PYTHON:-python}
source "$repo/tools/torchrun_options.sh"
split_torchrun_options "$@"
# torchrun's parser rejects --logs anywhere on its command line (an ambiguous abbreviation of
# its --logs-specs): pass the tool's --logs on as its alias --logs-dir.
ARGS=()
for arg in ${TOOL_ARGS[@]+"${TOOL_ARGS[@]}"}; do
    case "$arg" in
        --logs) ARGS+=(--logs-dir) ;;
        --logs=*) ARGS+=("--logs-dir=${arg#--logs=}") ;;
        *) ARGS+=("$arg") ;;
    esac
done
PYTHONPATH="$repo:${PYTHONPATH:-}" exec "$PYTHON" -m torch.distributed.run \
    "${TORCHRUN_OPTIONS[@]}" \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --rdzv-backend=c10d --rdzv-endpoint="${MASTER_ADDR:-127.0.0.1}:${PORT:-29510}" \
    --nproc_per_node="$NPROC" "$repo/tools/train_retrieval.py" ${ARGS[@]+"${ARGS[@]}"}
