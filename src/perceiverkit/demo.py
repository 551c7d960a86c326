"""``make demo``: an offline tour with the small models shipped with the package (``perceiverkit.resources``).

1. fill-mask with the byte-level masked language model,
2. that model's masked-byte accuracy on the held-out bytes, measured as its training validation measured it,
3. the Fashion-MNIST classifier on the test images (accuracy printed, a grid of predictions saved),
4. optical flow on the Middlebury 2014 motorcycle pair (EPE against the ground truth, next to zero flow and
   OpenCV's Farnebäck and DIS methods with the settings chosen for this resolution on synthetic validation
   pairs; colour PNG and a figure saved),
5. the presets of DeepMind's published checkpoints and a model assembled for a new modality.

Everything goes to ``demo-output/`` (pictures and ``summary.json``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from .checkpoints import from_pretrained
from .config import DecoderConfig, EncoderConfig, PositionEncodingConfig
from .decoders import CrossAttentionDecoder
from .encoder import PerceiverEncoder
from .model import PerceiverIO
from .resources import packaged_config, packaged_model
from .tasks import PRESETS, create_model
from .tasks.base import TaskModel
from .tasks.flow import OpticalFlow
from .tasks.text import MaskedLanguageModel
from .tasks.vision import ImageClassifier

M = TypeVar("M", bound=TaskModel[Any])

#: The shipped models, by role: their names (folders of ``perceiverkit/resources/models/``).
SHIPPED_MODELS = {"mlm": "byte-mlm", "fashion_mnist": "fashion-mnist-classifier", "flow": "optical-flow-small"}
#: The resolution the shipped flow model is evaluated at (a fraction of skimage's 741×500 pair).
FLOW_DEMO_SCALE = 0.125
#: Short texts: the shipped MLM reads 32-byte windows (30 bytes plus [CLS] and [SEP]).
FILL_MASK_TEXTS = (
    "a computer prog[MASK]am",
    "the capital of Fr[MASK]nce",
    "a hacker who [MASK]rites code",
    "the state of being h[MASK]ppy",
    "a person who w[MASK][MASK]ks hard",
    "The quick brown fox jum[MASK]s.",
)


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))


def _load(models: Path | None, role: str, kind: type[M]) -> M:
    name = SHIPPED_MODELS[role]
    where = packaged_model(name) if models is None else models / name
    if where is None or not where.is_dir():
        raise FileNotFoundError(f"the shipped model {name} is missing from {models or 'the installed package'}; "
                                "pass --models DIR with a folder that holds it")
    model = from_pretrained(where).eval()
    if not isinstance(model, kind):
        raise TypeError(f"the shipped model {name} is a {type(model).__name__}, expected a {kind.__name__}")
    return model


def fill_mask_section(models: Path | None) -> dict[str, Any]:
    from .pipelines.fill_mask import FillMask

    fill = FillMask(_load(models, "mlm", MaskedLanguageModel), top_k=3)
    results = fill.predict(list(FILL_MASK_TEXTS))  # per text, per mask: the top 3 candidates
    filled = [per_mask[0][0]["sequence"] for per_mask in results]  # the best candidate fills every mask
    for text, text_filled, per_mask in zip(FILL_MASK_TEXTS, filled, results, strict=True):
        top = [[c["token_str"] for c in candidates] for candidates in per_mask]
        print(f"  {text}\n→ {text_filled}   (top 3 per mask: {top})")
    return {"texts": list(FILL_MASK_TEXTS), "filled": filled}


def mlm_accuracy_section(models: Path | None) -> dict[str, Any]:
    """Masked-byte accuracy on the held-out bytes, computed exactly as the model's training validated: the
    ``mlm`` config's data (the same held-out 5 %, windows and batches), masks fixed by the run seed, and the
    config's number of validation batches."""
    try:
        import yaml  # noqa: F401  # reads the config; with Lightning, part of the optional `train` extra

        from .train.config import load_train_config
        from .train.run import build_datamodule
    except ImportError as error:
        print(f"no held-out accuracy: {error.name or 'lightning'} is not installed (pip install 'perceiverkit[train]')")
        return {}
    model = _load(models, "mlm", MaskedLanguageModel)
    config = load_train_config(path=packaged_config("mlm"))
    data = build_datamodule(config, model)
    data.setup("validate")
    limit = config.trainer.limit_val_batches
    batches = limit if isinstance(limit, int) else None  # the config validates on its first 50 batches
    correct = masked = windows = 0
    with torch.inference_mode():
        for index, batch in enumerate(data.val_dataloader()):
            if batches is not None and index >= batches:
                break
            points = batch["output_points"]  # (B, Q) masked positions; only those are decoded
            logits = model(batch["input_ids"], batch["attention_mask"], output_points=points).logits
            hits = logits.argmax(-1) == batch["labels"].gather(1, points)
            correct, masked, windows = correct + int(hits.sum()), masked + hits.numel(), windows + len(points)
    accuracy = correct / masked
    held_out = len(data.val_set)  # type: ignore[arg-type]  # a sized dataset of windows
    print(f"masked-byte accuracy on the held-out bytes: {accuracy:.2%} ({masked:,} masked bytes in the first "
          f"{windows:,} of {held_out:,} held-out windows, masks fixed by seed {config.seed}, as in training)")
    return {"accuracy": accuracy, "masked_bytes": masked, "windows": windows, "held_out_windows": held_out}


def fashion_mnist_section(models: Path | None, out: Path, limit: int | None, batch_size: int = 500) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from .datasets.fashion_mnist import FashionMNIST
    from .viz.grid import save_labelled_grid

    model = _load(models, "fashion_mnist", ImageClassifier)
    test = FashionMNIST("test")
    count = len(test) if limit is None else min(limit, len(test))
    images = torch.stack([test[i][0] for i in range(count)])
    labels = test.labels[:count]
    predictions = []
    with torch.inference_mode():
        for start in tqdm(range(0, count, batch_size), desc="Fashion-MNIST test", unit="batch"):
            predictions.append(model(images[start:start + batch_size]).logits.argmax(-1))
    predicted = torch.cat(predictions)
    accuracy = float((predicted == labels).float().mean())
    print(f"accuracy on {count:,} Fashion-MNIST test images: {accuracy:.2%}")
    names = model.config.labels or test.classes
    grid = save_labelled_grid(
        test.images[:32].numpy(), [names[int(p)] for p in predicted[:32]],
        [bool(p == t) for p, t in zip(predicted[:32], labels[:32], strict=True)],
        out / "fashion-mnist-predictions.png")
    print(f"wrote {grid} (green = correct, red = wrong)")
    return {"images": count, "accuracy": accuracy, "picture": grid.name}


def flow_section(models: Path | None, out: Path) -> dict[str, Any]:
    from .evaluation.middlebury import evaluate_flow_on_motorcycle, load_motorcycle
    from .viz.flow import average_endpoint_error, save_flow_png

    model = _load(models, "flow", OpticalFlow)
    figure = out / "middlebury-flow-figure.png"
    pair = load_motorcycle(FLOW_DEMO_SCALE)  # loaded once for the model and for Farnebäck
    result = evaluate_flow_on_motorcycle(model, FLOW_DEMO_SCALE, figure=figure, return_flow=True, pair=pair)
    assert isinstance(result, tuple)  # return_flow=True
    evaluation, flow = result
    save_flow_png(flow, out / "middlebury-flow.png")
    summary: dict[str, Any] = {"scale": FLOW_DEMO_SCALE, "width": evaluation.width, "height": evaluation.height,
                               "epe": evaluation.epe,
                               "zero_flow_epe": evaluation.zero_flow_epe}
    print(evaluation)
    try:
        import cv2  # noqa: F401  # OpenCV is optional
    except ImportError:
        print("OpenCV is not installed: no comparison with Farnebäck and DIS")
    else:
        from .evaluation.baselines import DEFAULT_FARNEBACK, tuned_setting

        # Settings chosen on synthetic validation pairs of this size (benchmarks/flow_baselines.py), not here.
        baselines = {"farneback": tuned_setting("farneback", evaluation.height, evaluation.width),
                     "dis": tuned_setting("dis", evaluation.height, evaluation.width),
                     "farneback_default": DEFAULT_FARNEBACK}
        names = {"farneback": "Farnebäck, tuned", "dis": "DIS, tuned", "farneback_default": "Farnebäck, untuned"}
        print(f"OpenCV's methods with their parameters chosen on synthetic pairs of {evaluation.width}×"
              f"{evaluation.height} (benchmarks/flow_baselines.py), not on this pair:")
        for key, setting in baselines.items():
            summary[f"{key}_epe"] = average_endpoint_error(setting.flow(pair.left, pair.right), pair.flow, pair.valid)
            summary[f"{key}_setting"] = setting.describe()
            print(f"  {names[key]}: EPE {summary[f'{key}_epe']:.3f} px ({setting.describe()})")
    print(f"wrote {out / 'middlebury-flow.png'} and {figure}")
    return summary


def architecture_section() -> None:
    for preset in PRESETS.values():
        with torch.device("meta"):
            count = create_model(preset.name).num_parameters()
        print(f"{preset.name:<24} {preset.task:<18} {count:>13,} parameters  ({preset.hub_id})")
    encoder = PerceiverEncoder(EncoderConfig(num_latents=32, d_latents=64, num_self_attends_per_block=2,
                                             num_self_attention_heads=4, num_cross_attention_heads=1),
                               input_channels=3)
    decoder = CrossAttentionDecoder(
        DecoderConfig(output_index_dims=(16, 16), query_channels=64, output_channels=1,
                      queries=PositionEncodingConfig(kind="fourier", num_bands=8, max_resolution=(16, 16),
                                                     project_pos_dim=64)),
        latent_channels=64,
    )
    generic = PerceiverIO(encoder, decoder).eval()
    points = torch.randn(2, 1000, 3)  # e.g. a point cloud: 1000 unordered xyz points
    with torch.no_grad():
        encoded = generic.encode(points)
        chunk, _ = generic.decode(encoded, output_points=torch.arange(64))
    assert isinstance(chunk, torch.Tensor)  # a decoder without modalities decodes one tensor, not a dict of them
    print(f"a new modality: 1000 points → latents {tuple(encoded.latents.shape)} → first 64 of 256 outputs "
          f"{tuple(chunk.shape)}")


#: The parts of the tour, in order (``perceiverkit demo --sections``).
SECTIONS = ("fill-mask", "mlm-accuracy", "fashion-mnist", "flow", "architectures")


def run_demo(output: str | Path = "demo-output", models: str | Path | None = None,
             fashion_mnist_limit: int | None = None, sections: Sequence[str] = SECTIONS) -> dict[str, Any]:
    """Run the tour (or the named ``sections`` of it) with the shipped models (the packaged ones, or those in the
    folder ``models``); returns (and writes to ``output/summary.json``) what it measured."""
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown demo sections {unknown}; expected some of {list(SECTIONS)}")
    torch.manual_seed(0)
    np.random.seed(0)
    out = Path(output)
    folder = None if models is None else Path(models)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    summary: dict[str, Any] = {}
    if "fill-mask" in sections:
        _section("Fill-mask with the shipped byte-level MLM")
        summary["fill_mask"] = fill_mask_section(folder)
    if "mlm-accuracy" in sections:
        _section("The byte-level MLM on its held-out bytes")
        summary["mlm_accuracy"] = mlm_accuracy_section(folder)
    if "fashion-mnist" in sections:
        _section("Fashion-MNIST with the shipped classifier")
        summary["fashion_mnist"] = fashion_mnist_section(folder, out, fashion_mnist_limit)
    if "flow" in sections:
        _section(f"Optical flow on the Middlebury motorcycle pair (scale {FLOW_DEMO_SCALE})")
        summary["flow"] = flow_section(folder, out)
    if "architectures" in sections:
        _section("DeepMind's published architectures, and a model for a new modality")
        architecture_section()
    summary["seconds"] = round(time.perf_counter() - start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nsummary: {out / 'summary.json'} ({summary['seconds']} s)")
    return summary
