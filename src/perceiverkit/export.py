"""ONNX export of task models through ``torch.onnx`` (the ``torch.export`` based exporter), checked against
PyTorch with onnxruntime."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from .tasks.base import TaskModel
from .tasks.flow import OpticalFlowConfig
from .tasks.multimodal import MultimodalAutoencoderConfig
from .tasks.point_cloud import PointCloudClassifierConfig
from .tasks.text import TextConfig
from .tasks.vision import ImageClassifierConfig


class _TextExport(nn.Module):
    def __init__(self, model: TaskModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


class _SingleInputExport(nn.Module):
    def __init__(self, model: TaskModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor) -> Tensor:
        return self.model(inputs).logits


class _AutoencoderExport(nn.Module):
    def __init__(self, model: TaskModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor, audio: Tensor, label: Tensor, image_points: Tensor,
                audio_points: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits = self.model({"image": image, "audio": audio, "label": label},
                            {"image": image_points, "audio": audio_points, "label": None}).logits
        return logits["image"], logits["audio"], logits["label"]


@dataclass
class ExportSpec:
    module: nn.Module
    inputs: dict[str, Tensor]
    outputs: list[str]
    dynamic: dict[str, dict[int, str]]


def export_spec(model: TaskModel, batch_size: int = 2, sequence_length: int | None = None) -> ExportSpec:
    """What to trace for each task: a wrapper with plain tensor inputs, example inputs and dynamic axes."""
    c = model.config  # each task's model holds its own config class, which says what to build
    if isinstance(c, TextConfig):  # masked-lm, text-classification
        length = min(sequence_length or 16, c.max_position_embeddings)
        ids = torch.randint(6, c.vocab_size, (batch_size, length))
        seq = {0: "batch", 1: "sequence"}
        return ExportSpec(_TextExport(model), {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                          ["logits"], {"input_ids": seq, "attention_mask": seq})
    if isinstance(c, ImageClassifierConfig):
        size = c.image.position_grid or c.image.position.max_resolution
        if size is None:  # validate() requires one of them (trainable and Fourier positions respectively)
            raise ValueError("ImagePreprocessorConfig needs position_grid or position.max_resolution to size the input")
        if c.image.prep_type == "conv":
            size = tuple(4 * s for s in size)  # the stem downsamples by 4
        pixels = torch.randn(batch_size, c.image.in_channels, *size)
        return ExportSpec(_SingleInputExport(model), {"pixel_values": pixels}, ["logits"],
                          {"pixel_values": {0: "batch"}})
    if isinstance(c, OpticalFlowConfig):
        patches = torch.randn(batch_size, 2, 27, *c.train_size)
        return ExportSpec(_SingleInputExport(model), {"inputs": patches}, ["logits"], {"inputs": {0: "batch"}})
    if isinstance(c, PointCloudClassifierConfig):
        points = torch.randn(batch_size, sequence_length or 64, 3)
        return ExportSpec(_SingleInputExport(model), {"points": points}, ["logits"],
                          {"points": {0: "batch", 1: "points"}})
    if isinstance(c, MultimodalAutoencoderConfig):
        t, h, w = c.video_grid
        inputs = {"image": torch.rand(batch_size, t, 3, h, w), "audio": torch.randn(batch_size, c.num_audio_samples),
                  "label": torch.zeros(batch_size, c.num_labels),
                  "image_points": torch.arange(min(64, c.num_outputs()["image"])), "audio_points": torch.arange(4)}
        # The batch size is fixed at export (tracing specialises it); the number of decoded points is not.
        return ExportSpec(_AutoencoderExport(model), inputs, ["image_logits", "audio_logits", "label_logits"],
                          {"image_points": {0: "image_points"}, "audio_points": {0: "audio_points"}})
    raise ValueError(f"no ONNX export for task {model.task!r}")


def export_onnx(model: TaskModel, path: str | Path, batch_size: int = 2, sequence_length: int | None = None,
                verify: bool = True) -> tuple[Path, float | None]:
    """Export ``model`` (in eval mode) to ONNX at ``path``; with ``verify``, run it in onnxruntime on the
    example inputs and return the largest absolute difference from PyTorch."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    spec = export_spec(model, batch_size, sequence_length)
    spec.module.eval()
    args = tuple(spec.inputs.values())
    dims: dict[str, object] = {}  # one Dim hint per axis name, shared by the inputs that name it
    shapes = tuple(
        {axis: dims.setdefault(name, torch.export.Dim.DYNAMIC) for axis, name in spec.dynamic[key].items()}
        if key in spec.dynamic else None
        for key in spec.inputs
    )
    with torch.no_grad():
        torch.onnx.export(spec.module, args, str(path), input_names=list(spec.inputs), output_names=spec.outputs,
                          dynamic_shapes=shapes, dynamo=True, verbose=False)
    if not verify:
        return path, None
    return path, verify_onnx(path, spec)


def verify_onnx(path: str | Path, spec: ExportSpec) -> float:
    """Largest absolute difference between onnxruntime and PyTorch on the spec's example inputs."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("checking an ONNX export needs onnxruntime: pip install 'perceiverkit[onnx]'") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {name: t.numpy() for name, t in spec.inputs.items()})
    with torch.no_grad():
        expected = spec.module(*spec.inputs.values())
    expected = expected if isinstance(expected, tuple) else (expected,)
    return max(float(abs(g - e.numpy()).max()) for g, e in zip(got, expected, strict=True))
