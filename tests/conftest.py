"""Shared fixtures: tiny ViTs that build in milliseconds on a CPU.

The tests' own torch runs one thread (and so do the tools they start, which inherit
``OMP_NUM_THREADS``) unless ``OMP_NUM_THREADS`` is set: the tiny models gain nothing from
more, and OpenMP threads that wait for a busy core made a 50-step training on a loaded
2-core machine take 30-46 s instead of 0.5 s.
"""
import os

if 'OMP_NUM_THREADS' not in os.environ:
    os.environ['OMP_NUM_THREADS'] = '1'

import pytest  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402

from vapt_mm.models.timm_vit import TimmViT  # noqa: E402

torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))

#: Test files of a minute or more (subprocesses, real weights), slowest first. Collected
#: first, so that pytest-xdist (``--no-loadscope-reorder`` in setup.cfg) hands them out
#: first and its workers finish together instead of one waiting on the last slow file.
SLOW_FILES = ('test_cluster_faults_seg.py', 'test_cluster_faults_retrieval.py',
              'test_seg_tools.py', 'test_real_backbone.py', 'test_train_retrieval_shards.py',
              'test_retrieval_train.py', 'test_device_check.py', 'test_study_seg.py',
              'test_real_backbone_cls.py', 'test_reliability_seg.py', 'test_study_retrieval.py',
              'test_visualize_prompts.py', 'test_cls_protocol.py')


def pytest_collection_modifyitems(items) -> None:
    """The files of ``SLOW_FILES`` first, in its order; the rest as collected."""
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def tiny_timm_vit(depth: int = 3, dim: int = 32, img_size: int = 32, patch: int = 8,
                  reg_tokens: int = 0) -> torch.nn.Module:
    """A random timm ViT with ``depth`` blocks of width ``dim``."""
    return timm.create_model('vit_tiny_patch16_224', pretrained=False, img_size=img_size,
                             patch_size=patch, embed_dim=dim, depth=depth, num_heads=2,
                             num_classes=0, dynamic_img_size=True, reg_tokens=reg_tokens)


@pytest.fixture
def tiny_vit() -> TimmViT:
    torch.manual_seed(0)
    return TimmViT(tiny_timm_vit()).eval()


@pytest.fixture(scope='module')
def mmpretrain_scope():
    """mmpretrain's registries for ``MODELS.build`` in a module: an earlier test's Runner or
    ``init_default_scope('mmseg')`` leaves its own scope current, and mmengine builds in it."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield
