"""The ``perceiverkit`` command line. Errors print one line (no traceback) and exit with status 2."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .config import ConfigError

if TYPE_CHECKING:
    from .benchmark import BenchOptions

EXIT_USAGE = 2


def _cmd_presets(args: argparse.Namespace) -> None:
    from .tasks import PRESETS, TASKS

    print(f"{'preset':<26} {'task':<24} {'parameters':>12}  checkpoint")
    for preset in PRESETS.values():
        with torch.device("meta"):  # counting needs shapes, not memory
            count = TASKS[preset.task](preset.make_config()).num_parameters()
        print(f"{preset.name:<26} {preset.task:<24} {count:>12,}  {preset.hub_id or '-'}")


def _load(source: str, task: str) -> Any:
    """Load a checkpoint and check that it holds a model for ``task``."""
    from .checkpoints import from_pretrained

    model = from_pretrained(source)
    if model.task != task:
        raise ValueError(f"{source} holds a {model.task} model; this command needs a {task} model")
    return model


def _cmd_fill_mask(args: argparse.Namespace) -> None:
    from .pipelines import FillMask

    fill = FillMask(_load(args.model, "masked-lm"), top_k=args.top_k)
    for text, result in zip(args.text, fill(args.text)):
        print(f"{text!r} → {result.text!r}")
        for i, candidates in enumerate(result.candidates):
            print(f"    mask {i}: {candidates}")


def _cmd_classify_image(args: argparse.Namespace) -> None:
    from .pipelines import ImageClassification

    classify = ImageClassification(_load(args.model, "image-classification"), batch_size=args.batch_size)
    for path, predictions in zip(args.images, classify(args.images, top_k=args.top_k, progress=True)):
        ranked = ", ".join(f"{p.label} ({p.probability:.1%})" for p in predictions)
        print(f"{path}: {ranked}")


def _cmd_flow(args: argparse.Namespace) -> None:
    from .pipelines import FlowEstimation
    from .viz import save_flow_figure, save_flow_png

    if len(args.frames) < 2:
        raise ValueError("flow needs at least two frames")
    estimate = FlowEstimation(_load(args.model, "optical-flow"), tile_batch_size=args.tile_batch_size)
    pairs = list(zip(args.frames[:-1], args.frames[1:]))
    output = Path(args.output)
    for i, (first, second) in enumerate(pairs):
        flow = estimate(first, second, progress=True)
        target = output if len(pairs) == 1 else output.with_name(f"{output.stem}_{i:04d}{output.suffix or '.png'}")
        save_flow_png(flow, target)
        magnitude = (flow**2).sum(-1) ** 0.5
        print(f"{first} → {second}: {target} (mean |flow| {magnitude.mean():.2f} px, max {magnitude.max():.2f} px)")
        if args.figure:
            from .pipelines.flow import frame_pair

            frames = frame_pair(first, second)[0].numpy().astype("uint8").transpose(0, 2, 3, 1)
            save_flow_figure((frames[0], frames[1]), flow, target.with_name(target.stem + "_figure.png"))
        if len(pairs) > 1:
            print(f"  [{i + 1}/{len(pairs)}]", file=sys.stderr)


def _cmd_eval_flow(args: argparse.Namespace) -> None:
    from .evaluation import evaluate_flow_on_motorcycle

    result = evaluate_flow_on_motorcycle(_load(args.model, "optical-flow"), scale=args.scale, figure=args.figure)
    print(result)
    if args.figure:
        print(f"figure: {args.figure}")


def _cmd_autoencode(args: argparse.Namespace) -> None:
    from .media import bundled_video
    from .pipelines import Autoencode, save_outputs

    video = args.video or bundled_video()
    autoencode = Autoencode(_load(args.model, "multimodal-autoencoding"), chunk_size=args.chunk_size)
    clip = autoencode.read(video, start=args.start)
    result = autoencode(clip, progress=True)
    paths = save_outputs(clip, result, args.output, clip.sample_rate)
    print(f"{video}: video PSNR {result.video_psnr:.2f} dB, audio PSNR {result.audio_psnr:.2f} dB, "
          f"label {result.label_name!r} ({result.label_probability:.1%})")
    for kind, path in paths.items():
        print(f"  {kind}: {path}")


def _cmd_train(args: argparse.Namespace) -> None:
    from .train import load_train_config, train
    from .train.config import dump_train_config

    config = load_train_config(args.task, args.config, args.set)
    if args.print_config:
        print(dump_train_config(config), end="")
        return
    result = train(config)
    if not result.is_global_zero:  # one report per job, not one per process
        return
    if result.interrupted:
        print(f"stopped by SIGTERM; checkpoint saved to {result.checkpoint_dir / 'last.ckpt'} "
              f"(continue with --set resume=auto)")
        return
    print(f"model: {result.model_dir}")
    for name, value in sorted(result.metrics.items()):
        print(f"  {name}: {value:.4f}")


def _cmd_export_onnx(args: argparse.Namespace) -> None:
    from .checkpoints import from_pretrained
    from .export import export_onnx

    model = from_pretrained(args.model)
    path, diff = export_onnx(model, args.output, batch_size=args.batch_size, sequence_length=args.sequence_length,
                             verify=not args.no_verify)
    check = "" if diff is None else f"; onnxruntime matches PyTorch within {diff:.2e}"
    print(f"exported {type(model).__name__} to {path}{check}")


def _cmd_plot(args: argparse.Namespace) -> None:
    from .viz import plot_curves, read_metrics

    run = Path(args.run_dir)
    series = read_metrics(run / "csv" / "metrics.csv")
    metrics = args.metrics or [m for m in sorted(series) if not m.startswith("lr-")]
    groups = {"loss": [m for m in metrics if m.endswith("loss")],
              "metrics": [m for m in metrics if not m.endswith("loss")]}
    for name, group in groups.items():
        if group:
            path = plot_curves(series, group, run / f"{name}.png", title=f"{run.name}: {name}")
            print(f"{name}: {path}")


def _cmd_convert(args: argparse.Namespace) -> None:
    from .checkpoints import from_pretrained

    model = from_pretrained(args.source)
    path = model.save_pretrained(args.destination)
    print(f"saved {type(model).__name__} ({model.num_parameters():,} parameters) to {path}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(args.output, args.models, args.fashion_mnist_limit)


def bench_options(args: argparse.Namespace) -> BenchOptions:
    """The :class:`~perceiverkit.benchmark.BenchOptions` that ``perceiverkit bench`` runs with these arguments."""
    from .benchmark import BenchOptions

    return BenchOptions(
        device=args.device, dtype=args.dtype, reference_dtype=args.reference_dtype,
        cast_weights=args.cast_weights, half_precision_latents=args.half_precision_latents,
        attention_kernel=args.attention_kernel,
        memory_budget=args.memory_budget, scale=args.scale,
        workloads=args.workloads, batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
        compile=args.compile or args.compile_mode is not None, compile_mode=args.compile_mode, out=args.out)


def _cmd_bench(args: argparse.Namespace) -> None:
    from .benchmark import run_benchmark, to_markdown

    report = run_benchmark(bench_options(args))
    print(to_markdown(report))
    if args.out:
        print(f"written: {Path(args.out) / 'bench.json'}, {Path(args.out) / 'bench.md'}")


def build_parser() -> argparse.ArgumentParser:
    from .benchmark.runner import COMPILE_MODES, DTYPES
    from .layers.attention_ops import ATTENTION_KERNELS

    parser = argparse.ArgumentParser(prog="perceiverkit", description="Perceiver IO models for any modality.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("presets", help="list the official configurations and their sizes")
    p.set_defaults(run=_cmd_presets)

    model_help = "checkpoint directory (ours or Transformers') or hub id (default: %(default)s)"
    p = sub.add_parser("fill-mask", help="fill [MASK] bytes in texts with a masked language model")
    p.add_argument("text", nargs="+", help="texts containing [MASK] tokens, one per masked byte")
    p.add_argument("--model", default="deepmind/language-perceiver", help=model_help)
    p.add_argument("--top-k", type=int, default=3, help="candidates to show per masked byte (default 3)")
    p.set_defaults(run=_cmd_fill_mask)

    p = sub.add_parser("classify-image", help="top-k ImageNet (or the model's) labels for image files")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--model", default="deepmind/vision-perceiver-learned", help=model_help)
    p.add_argument("--top-k", type=int, default=5, help="labels per image (default 5)")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    p.set_defaults(run=_cmd_classify_image)

    p = sub.add_parser("flow", help="optical flow between consecutive frames, written as colour-coded PNGs")
    p.add_argument("frames", nargs="+", help="two or more image files of the same size")
    p.add_argument("-o", "--output", default="flow.png", help="PNG path; numbered per pair for 3+ frames")
    p.add_argument("--model", default="deepmind/optical-flow-perceiver", help=model_help)
    p.add_argument("--figure", action="store_true", help="also write a side-by-side figure of frames and flow")
    p.add_argument("--tile-batch-size", type=int, default=4, help="tiles per forward pass (default 4)")
    p.set_defaults(run=_cmd_flow)

    p = sub.add_parser("eval-flow", help="end-point error on the Middlebury 2014 motorcycle stereo pair")
    p.add_argument("--model", default="deepmind/optical-flow-perceiver", help=model_help)
    p.add_argument("--scale", type=float, default=1.0, help="resize the pair by this factor (default 1)")
    p.add_argument("--figure", help="write a figure of frames, flow, ground truth and error to this PNG")
    p.set_defaults(run=_cmd_eval_flow)

    p = sub.add_parser("autoencode", help="reconstruct a video clip's frames, audio and label")
    p.add_argument("video", nargs="?", help="video file with audio (default: the bundled Big Buck Bunny clip, "
                                             "© Blender Foundation, CC BY 3.0)")
    p.add_argument("-o", "--output", default="autoencode-output", help="output folder (default %(default)s)")
    p.add_argument("--model", default="deepmind/multimodal-perceiver", help=model_help)
    p.add_argument("--start", type=float, default=0.0, help="start time in seconds (default 0)")
    p.add_argument("--chunk-size", type=int, default=16384, help="queries decoded at once (default 16384)")
    p.set_defaults(run=_cmd_autoencode)

    p = sub.add_parser("train", help="train a model; settings from a YAML config and --set overrides")
    p.add_argument("task", nargs="?", help="masked-lm (mlm), text-classification, image-classification, optical-flow, "
                                "multimodal-autoencoding or point-cloud-classification (default: the config's)")
    p.add_argument("--config", help="YAML training config (see configs/)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override settings, e.g. optim.lr=3e-4 trainer.max_steps=500 data.batch_size=64")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(run=_cmd_train)

    p = sub.add_parser("export-onnx", help="export a model to ONNX and check it with onnxruntime")
    p.add_argument("model", help="checkpoint directory or hub id")
    p.add_argument("output", help="path of the .onnx file")
    p.add_argument("--batch-size", type=int, default=2, help="example batch size (default 2)")
    p.add_argument("--sequence-length", type=int, help="example length for text and point clouds")
    p.add_argument("--no-verify", action="store_true", help="skip the onnxruntime comparison")
    p.set_defaults(run=_cmd_export_onnx)

    p = sub.add_parser("plot", help="PNG loss and metric curves of a training run")
    p.add_argument("run_dir", metavar="RUN", help="the run's output_dir")
    p.add_argument("--metrics", nargs="*", help="metric names (default: all but learning rates)")
    p.set_defaults(run=_cmd_plot)

    p = sub.add_parser("convert", help="convert a Transformers checkpoint (directory or hub id) to our format")
    p.add_argument("source")
    p.add_argument("destination")
    p.set_defaults(run=_cmd_convert)

    p = sub.add_parser("bench", help="time ours against Transformers on identical weights (needs transformers)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="(default %(default)s)")
    p.add_argument("--dtype", choices=list(DTYPES), default="fp32",
                   help="bf16/fp16 = autocast for both (default fp32; fp16 has no loss scaling: inference)")
    p.add_argument("--reference-dtype", choices=list(DTYPES),
                   help="Transformers' precision when it should differ from --dtype (e.g. --dtype bf16 "
                        "--reference-dtype fp32: ours in bf16 against Transformers' fp32 path)")
    p.add_argument("--memory-budget", type=float, metavar="B",
                   help="with --compile: activation memory budget of our compiled training steps in [0, 1] "
                        "(recompute cheap forward results in the backward pass; see perceiverkit.memory_budget)")
    p.add_argument("--cast-weights", action="store_true",
                   help="inference: run ours with its weights cast to --dtype (half precision end to end) instead "
                        "of under autocast; training keeps autocast")
    p.add_argument("--half-precision-latents", action="store_true",
                   help="with --dtype bf16/fp16: carry our latents through the self-attention stack in that dtype "
                        "instead of float32 (autocast keeps LayerNorm statistics in float32)")
    p.add_argument("--attention-kernel", choices=list(ATTENTION_KERNELS), default="auto",
                   help="how our attention is computed: auto (per shape), fused (SDPA), explicit "
                        "(matmul-softmax-matmul) or padded (SDPA at one zero-padded head width); default %(default)s")
    p.add_argument("--scale", choices=["full", "cpu", "tiny"],
                   help="full: published sizes and batches; cpu: batch 1 for a few cores; tiny: test models "
                        "(default: full on cuda, cpu on cpu)")
    p.add_argument("--workloads", nargs="+", metavar="NAME",
                   help="subset, space- or comma-separated (default: all; a wrong name lists them)")
    p.add_argument("--batch-size", type=int, help="override every workload's batch size")
    p.add_argument("--steps", type=int, help="timed steps (default: 10 full, 1 cpu, 2 tiny)")
    p.add_argument("--warmup", type=int, help="untimed warm-up steps after the check step "
                                              "(default: 3 full, 0 cpu, 1 tiny; at least 1 with --compile)")
    p.add_argument("--compile", action="store_true", help="wrap ours in torch.compile")
    p.add_argument("--compile-mode", choices=COMPILE_MODES,
                   help="torch.compile mode (implies --compile; reduce-overhead replays CUDA graphs)")
    p.add_argument("--out", help="folder for bench.json and bench.md")
    p.set_defaults(run=_cmd_bench)

    p = sub.add_parser("demo", help="a short offline tour of the library")
    p.add_argument("--output", default="demo-output", help="folder for the demo's files (default demo-output)")
    p.add_argument("--models", default="models", help="folder of the shipped models (default models)")
    p.add_argument("--fashion-mnist-limit", type=int, default=None,
                   help="classify only the first N Fashion-MNIST test images (default: all 10,000)")
    p.set_defaults(run=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], None] = args.run
    start = time.perf_counter()
    try:
        run(args)
    except (ValueError, TypeError, OSError, ImportError, ConfigError) as error:
        print(f"perceiverkit {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if args.command == "demo":
        print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
