# The paper's classification protocol, shared by configs/vtab1k and configs/fgvc (values from
# the official VAPT code, github.com/Minhchuyentoancbn/Visual-Adaptive-Prompt-Tuning,
# configs/base-prompt.yaml and tune_vtab.py / tune_fgvc.py): ViT-B/16 pretrained on
# ImageNet-21k (Google's imagenet21k_ViT-B_16.npz), the class token after the final norm, a
# linear head; SGD with momentum 0.9, batch 64, lr = base lr x 64 / 256, 10 warm-up epochs
# then cosine to 0 at epoch 100. Iteration-based (exact resume after a stop): an epoch is
# ceil(training images / 64) iterations; each benchmark sets `epoch_iters`.
#
# Methods (configs/*/_base_/methods/): one network, VAPTClsBackbone, for all of them: VAPT or
# VPT-deep prompts on the frozen ViT, no prompts on the frozen ViT (head-only), or no prompts
# with the ViT trained (full fine-tuning).
_base_ = ['./vapt_cls_runtime.py']
batch_size = 64
img_size = 224
checkpoint = 'pretrain/imagenet21k_ViT-B_16.npz'
data_preprocessor = dict(
    type='ClsDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    to_rgb=True)
model = dict(
    type='ImageClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='VAPTClsBackbone',
        vit=dict(type='VisionTransformer', arch='b', patch_size=16),
        img_size=img_size,
        prompt_cfg=dict(method='vapt', num_tokens=10),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=768,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01 * batch_size / 256, momentum=0.9, weight_decay=0.001))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=1,
                    backend_args=dict(backend='atomic_local')))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
