# VAPT runtime for classification (default_scope='mmpretrain'): register vapt_mm.cls (the
# backbone, and the segmentation runtime hooks in mmpretrain's registries); checkpoints hold
# only the trainable weights, the torch RNG states and the number of processes (exact resume,
# also on another number); stop on a NaN/inf loss or a label outside the head's classes;
# SIGTERM/SIGUSR1 stop with a checkpoint (exit 75).
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['vapt_mm.cls'], allow_failed_imports=False)
custom_hooks = [dict(type='TrainableCheckpointHook'), dict(type='RNGStateHook'),
                dict(type='InvalidLossHook'), dict(type='ClsLabelCheckHook'),
                dict(type='WorldSizeHook'), dict(type='PreemptionHook')]
