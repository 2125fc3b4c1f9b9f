#!/usr/bin/env bash
# Distributed training with torchrun: dist_train.sh CONFIG GPUS [--max-restarts N] [train.py args].
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT. Without CUDA, GPUS CPU processes (gloo).
# Signals and restarts: see tools/torchrun_options.sh (SHUTDOWN_TIMEOUT).
set -euo pipefail
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
source "$(dirname "$0")/torchrun_options.sh"
split_torchrun_options "${@:3}"

PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    "${TORCHRUN_OPTIONS[@]}" \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --rdzv-backend=c10d \
    --rdzv-endpoint="$MASTER_ADDR:$PORT" \
    --nproc_per_node="$GPUS" \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch ${TOOL_ARGS[@]+"${TOOL_ARGS[@]}"}
