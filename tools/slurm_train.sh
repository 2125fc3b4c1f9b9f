#!/usr/bin/env bash
# Slurm training: slurm_train.sh PARTITION JOB_NAME CONFIG [train.py args].
# GPUS (total), GPUS_PER_NODE, CPUS_PER_TASK, SIGNAL, SRUN_ARGS from the environment.
# SLURM sends every task SIGUSR1 90 s before the time limit (SIGNAL=USR1@90) and SIGTERM on
# preemption: all ranks stop after the iteration with a checkpoint and exit 75; run the
# same command with --resume to continue. A rank that fails makes srun end the others.
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SIGNAL=${SIGNAL:-USR1@90}
SRUN_ARGS=${SRUN_ARGS:-""}
PY_ARGS=("${@:4}")

PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    --gres=gpu:"${GPUS_PER_NODE}" \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    --signal="${SIGNAL}" \
    ${SRUN_ARGS} \
    python -u tools/train.py "${CONFIG}" --launcher="slurm" "${PY_ARGS[@]}"
