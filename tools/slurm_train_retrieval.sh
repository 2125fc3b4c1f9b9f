#!/usr/bin/env bash
# Slurm training of open_clip VAPT prompts, one task per GPU:
#   slurm_train_retrieval.sh PARTITION JOB_NAME [train_retrieval.py args]
# GPUS (total), GPUS_PER_NODE, CPUS_PER_TASK, PORT, SIGNAL, SRUN_ARGS from the environment.
# The tool reads SLURM_PROCID/NTASKS/LOCALID; the first node of the job is MASTER_ADDR.
# SLURM sends every task SIGUSR1 90 s before the time limit (SIGNAL=USR1@90) and SIGTERM on
# preemption: all ranks stop after the step with a checkpoint and exit 75; run the same
# command with --resume latest to continue. A rank that fails makes srun end the others.
set -x
PARTITION=$1
JOB_NAME=$2
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SIGNAL=${SIGNAL:-USR1@90}
SRUN_ARGS=${SRUN_ARGS:-""}
PY_ARGS=("${@:3}")

PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}" MASTER_PORT="${PORT:-29510}" \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    --gres=gpu:"${GPUS_PER_NODE}" \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    --signal="${SIGNAL}" \
    ${SRUN_ARGS} \
    bash -c 'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1) \
             exec python -u tools/train_retrieval.py "$@"' train_retrieval "${PY_ARGS[@]}"
