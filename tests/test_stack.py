"""The pinned stack works on a CPU: the foundation every other test stands on."""
import torch


def test_mmcv_ops_load_and_run():
    from mmcv.ops import nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)[1]
    assert keep.tolist() == [0, 2]


def test_mmseg_vision_transformer_forward():
    from mmseg.models.backbones import VisionTransformer
    vit = VisionTransformer(img_size=(32, 32), patch_size=8, embed_dims=32, num_layers=2,
                            num_heads=2, out_indices=(1,))
    vit.eval()  # mmseg's ViT.train() returns None, so no chaining
    (out,) = vit(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 32, 4, 4)


def test_open_clip_builds_vit_b32_without_weights():
    import open_clip
    model = open_clip.create_model('ViT-B-32', pretrained=None).eval()
    with torch.no_grad():
        image = model.encode_image(torch.randn(1, 3, 224, 224))
        text = model.encode_text(open_clip.get_tokenizer('ViT-B-32')(['a photo']))
    assert image.shape == text.shape == (1, 512)


def test_timm_builds_a_vit():
    import timm
    vit = timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=3).eval()
    assert vit(torch.randn(1, 3, 224, 224)).shape == (1, 3)


def test_webdataset_reads_a_tar_it_wrote_and_tensorboard_writes(tmp_path):
    import webdataset as wds
    from torch.utils.tensorboard import SummaryWriter
    with wds.TarWriter(str(tmp_path / 'a.tar')) as sink:
        sink.write({'__key__': 'x', 'txt': 'a caption'})
    assert [s['txt'] for s in wds.WebDataset(str(tmp_path / 'a.tar'), shardshuffle=False)
            .decode()] == ['a caption']
    with SummaryWriter(str(tmp_path / 'tb')) as writer:
        writer.add_scalar('loss', 1.0, 1)
    assert any(p.name.startswith('events.out.tfevents') for p in (tmp_path / 'tb').iterdir())
