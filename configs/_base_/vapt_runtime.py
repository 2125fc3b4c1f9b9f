# VAPT runtime: register vapt_mm; checkpoints hold only the trainable weights, the torch RNG
# states and the number of processes (exact resume, also on another number); stop on a
# NaN/inf loss or a label outside the classes; SIGTERM/SIGUSR1 stop with a checkpoint (exit 75).
custom_imports = dict(imports=['vapt_mm'], allow_failed_imports=False)
custom_hooks = [dict(type='TrainableCheckpointHook'), dict(type='RNGStateHook'),
                dict(type='InvalidLossHook'), dict(type='SegLabelCheckHook'),
                dict(type='WorldSizeHook'), dict(type='PreemptionHook')]
