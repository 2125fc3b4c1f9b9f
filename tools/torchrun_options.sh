# Sourced by tools/dist_train.sh and tools/dist_train_retrieval.sh (not run by itself).
# torchrun forwards SIGTERM and SIGUSR1 to the workers, which stop after the step with a
# checkpoint (exit 75), and gives them SHUTDOWN_TIMEOUT seconds (default 90) before SIGKILL.
# split_torchrun_options ARGS...: torchrun's --max-restarts N (restart the workers up to N
# times after a failure; they resume from the newest complete checkpoint) goes to
# TORCHRUN_OPTIONS, every other argument to TOOL_ARGS. The scripts rendezvous with c10d at
# MASTER_ADDR:PORT, and each attempt's workers get a store of their own: in the store torchrun
# shares with them, restarted workers may read the previous attempt's addresses and fail to
# connect (pytorch/pytorch#135712).
TORCHRUN_OPTIONS=(--signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1
                  --shutdown-timeout="${SHUTDOWN_TIMEOUT:-90}")
export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=${TORCH_DISABLE_SHARE_RDZV_TCP_STORE:-1}
TOOL_ARGS=()
split_torchrun_options() {
    while (($#)); do
        case "$1" in
            --max-restarts=*|--max_restarts=*) TORCHRUN_OPTIONS+=("$1") ;;
            --max-restarts|--max_restarts)
                TORCHRUN_OPTIONS+=("--max-restarts=${2:?--max-restarts needs a number}")
                shift ;;
            *) TOOL_ARGS+=("$1") ;;
        esac
        shift
    done
}
