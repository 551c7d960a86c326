"""Every task model compiles with ``torch.compile(fullgraph=True)`` and computes what the eager model computes.

``fullgraph=True`` turns any graph break into an error that names the break and the user code line, so each test
below doubles as a graph-break detector for its code path. Most tests use ``backend="eager"``: Dynamo traces the
model into one graph, which then runs op by op exactly as eager PyTorch does, so outputs and gradients must be
identical to the uncompiled model (the independent reference here) and tracing stays fast. One test runs the real
inductor backend, whose fused kernels may round differently, on the smallest model.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch._dynamo
import torch.nn.functional as F
from torch import Tensor, nn

import perceiverkit as pk
from perceiverkit.config import PositionEncodingConfig
from perceiverkit.processors.image import ImagePreprocessorConfig
from perceiverkit.tasks import PointCloudClassifier, PointCloudClassifierConfig

TINY = pk.EncoderConfig(num_latents=8, d_latents=32, num_self_attends_per_block=2, num_self_attention_heads=4,
                        num_cross_attention_heads=1, attention_dropout=0.0)

# A test case: a model and the positional and keyword arguments of one forward call.
Case = tuple[nn.Module, tuple[Any, ...], dict[str, Any]]


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> Iterator[None]:
    """Forget earlier compilations: many models share code objects (e.g. ``PerceiverIO.forward``), and guards
    failing across tests would otherwise pile up recompilations against Dynamo's per-function limit."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def compiled(model: nn.Module, backend: str = "eager") -> Callable[..., Any]:
    return torch.compile(model, fullgraph=True, backend=backend)


def tensors(value: Any, path: str = "out") -> Iterator[tuple[str, Tensor]]:
    """Every tensor inside a model output (dataclass fields, dicts, tuples), with a readable path to it."""
    if isinstance(value, Tensor):
        yield path, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from tensors(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, dict):
        for key in sorted(value):
            yield from tensors(value[key], f"{path}[{key!r}]")
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from tensors(item, f"{path}[{i}]")


def assert_same_outputs(ours: Any, reference: Any, atol: float = 1e-6, rtol: float = 0.0) -> None:
    """The two outputs hold tensors at the same places, and those tensors agree within ``atol``."""
    a, b = dict(tensors(ours)), dict(tensors(reference))
    assert a.keys() == b.keys(), f"compiled output has {sorted(a)}, eager has {sorted(b)}"
    assert a, "the output holds no tensors"
    for path in a:
        torch.testing.assert_close(a[path], b[path], atol=atol, rtol=rtol, msg=lambda m, p=path: f"{p}: {m}")


# --- models ----------------------------------------------------------------------------------------------------


def _mlm() -> pk.MaskedLanguageModel:
    torch.manual_seed(0)
    return pk.MaskedLanguageModel(pk.MaskedLanguageModelConfig(d_model=24, max_position_embeddings=64,
                                                               encoder=TINY)).eval()


def _image(prep_type: str, learned: bool = False) -> pk.ImageClassifier:
    torch.manual_seed(0)
    extra: dict[str, Any] = {
        "conv": dict(out_channels=8, spatial_downsample=4),
        "conv3x3": dict(out_channels=8, spatial_downsample=2),
        "conv1x1": dict(out_channels=8, spatial_downsample=2),
        "patches": dict(spatial_downsample=4, linear_after_patching=True, out_channels=8),
        "pixels": dict(spatial_downsample=2),
    }[prep_type]
    if learned:  # learned positions on the 8×8 grid that 16×16 images give with spatial_downsample=2
        position = PositionEncodingConfig(kind="trainable", num_channels=6, project_pos_dim=10)
        extra["position_grid"] = (8, 8)
    else:
        position = PositionEncodingConfig(kind="fourier", num_bands=3, max_resolution=(8, 8))
    config = pk.ImageClassifierConfig(image=ImagePreprocessorConfig(prep_type=prep_type, position=position, **extra),
                                      encoder=TINY, num_labels=5)
    return pk.ImageClassifier(config).eval()


def _flow() -> pk.OpticalFlow:
    torch.manual_seed(0)
    config = pk.OpticalFlowConfig(train_size=(12, 16), num_bands=4, patch_features=8, tile_overlap=4, encoder=TINY)
    return pk.OpticalFlow(config).eval()


def _autoencoder() -> pk.MultimodalAutoencoder:
    torch.manual_seed(0)
    return pk.MultimodalAutoencoder(pk.MultimodalAutoencoderConfig(
        num_frames=2, image_size=8, image_patch_size=4, image_num_bands=4, audio_samples_per_frame=16,
        samples_per_patch=4, audio_num_bands=6, num_labels=5, label_query_channels=16, output_num_channels=12,
        encoder=TINY)).eval()


def _point_cloud() -> PointCloudClassifier:
    torch.manual_seed(0)
    return PointCloudClassifier(PointCloudClassifierConfig(num_labels=3, num_bands=2, encoder=TINY)).eval()


def _ids(batch: int = 2, length: int = 11) -> Tensor:
    return torch.randint(0, 262, (batch, length), generator=torch.Generator().manual_seed(1))


def _padding_mask() -> Tensor:
    mask = torch.ones(2, 11, dtype=torch.long)
    mask[1, 7:] = 0  # the second sequence is 7 tokens long
    return mask


def _images(size: int = 16) -> Tensor:
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))


def _frames(height: int, width: int, batch: int = 2) -> Tensor:
    return torch.rand(batch, 2, 3, height, width, generator=torch.Generator().manual_seed(3)) * 255


def _av_inputs() -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(4)
    return {"image": torch.rand(2, 2, 3, 8, 8, generator=gen), "audio": torch.randn(2, 32, generator=gen),
            "label": F.one_hot(torch.tensor([1, 4]), 5).float()}


def _mlm_labels() -> Tensor:
    labels = _ids()
    labels[:, ::2] = -100  # no loss at even positions
    return labels


CASES: dict[str, Callable[[], Case]] = {
    "mlm": lambda: (_mlm(), (_ids(),), {}),
    "mlm-attention-mask": lambda: (_mlm(), (_ids(), _padding_mask()), {}),
    "mlm-output-points": lambda: (_mlm(), (_ids(), _padding_mask()), {"output_points": torch.tensor([0, 3, 9])}),
    "mlm-per-example-points-and-labels": lambda: (
        _mlm(), (_ids(), _padding_mask(), _ids()), {"output_points": torch.tensor([[1, 2, 5], [0, 4, 6]])}),
    "mlm-labels-loss": lambda: (_mlm(), (_ids(), _padding_mask(), _mlm_labels()), {}),
    "mlm-attentions-and-hidden-states": lambda: (
        _mlm(), (_ids(), _padding_mask()), {"output_attentions": True, "output_hidden_states": True}),
    "sequence-classifier-labels": lambda: (
        pk.SequenceClassifier(pk.SequenceClassifierConfig(d_model=24, max_position_embeddings=64, encoder=TINY,
                                                          num_labels=3)).eval(),
        (_ids(), _padding_mask(), torch.tensor([2, 0])), {}),
    "sequence-classifier-multi-label": lambda: (
        pk.SequenceClassifier(pk.SequenceClassifierConfig(d_model=24, max_position_embeddings=64, encoder=TINY,
                                                          num_labels=3)).eval(),
        (_ids(), _padding_mask(), torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])), {}),
    **{f"image-{prep}": (lambda prep=prep: (_image(prep), (_images(), torch.tensor([4, 1])), {}))
       for prep in ("conv", "conv3x3", "conv1x1", "patches", "pixels")},
    "image-learned-positions": lambda: (_image("conv1x1", learned=True), (_images(),), {}),
    "image-learned-positions-interpolated": lambda: (
        _image("conv1x1", learned=True), (_images(24),), {"interpolate_pos_encoding": True}),
    "flow-train-size-rgb": lambda: (_flow(), (_frames(12, 16),), {}),
    "flow-train-size-patches-output-points": lambda: (
        _flow(), (torch.rand(2, 2, 27, 12, 16) * 2 - 1,), {"output_points": torch.tensor([[0, 17, 191], [5, 6, 7]])}),
    # 23×37 needs 2×3 tiles of 12×16; a tile batch of 4 makes the stitching loop run twice.
    "flow-tiled-larger": lambda: (_flow(), (_frames(23, 37, batch=1),), {"tile_batch_size": 4}),
    "flow-padded-smaller": lambda: (_flow(), (_frames(7, 9, batch=1),), {}),
    "multimodal-subsampled": lambda: (
        _autoencoder(), (_av_inputs(), {"image": torch.tensor([0, 5, 9, 127]), "audio": torch.tensor([1, 7]),
                                         "label": None}), {}),
    "multimodal-skip-modality": lambda: (
        _autoencoder(), (_av_inputs(), {"image": torch.empty(0, dtype=torch.long), "audio": None}), {}),
    "multimodal-chunked-full-decode": lambda: (_autoencoder(), (_av_inputs(),), {"chunk_size": 50}),
    "point-cloud-labels": lambda: (
        _point_cloud(), (torch.randn(2, 20, 3), torch.tensor([2, 0])), {"output_attentions": True}),
}

#: Cases that pass labels, so that the output must carry a loss.
WITH_LOSS = {"mlm-per-example-points-and-labels", "mlm-labels-loss", "sequence-classifier-labels",
             "sequence-classifier-multi-label", "point-cloud-labels",
             *(f"image-{prep}" for prep in ("conv", "conv3x3", "conv1x1", "patches", "pixels"))}


@pytest.mark.parametrize("name", list(CASES))
def test_fullgraph_matches_eager(name: str) -> None:
    model, args, kwargs = CASES[name]()
    with torch.no_grad():
        expected = model(*args, **kwargs)
        actual = compiled(model)(*args, **kwargs)
    assert_same_outputs(actual, expected)
    if name in WITH_LOSS:  # the loss is part of the compiled graph, not computed outside it
        assert actual.loss is not None and torch.isfinite(actual.loss)


@pytest.mark.slow  # three dynamic-shape traces: about 20 s on two busy cores
def test_recompiles_for_new_shapes_without_graph_breaks() -> None:
    """A call at a second shape makes Dynamo recompile with symbolic (dynamic) sizes: validation on symbolic
    shapes and the tiling arithmetic must still trace into one graph, and for text the dynamic graph must serve
    any further batch size and length without another compilation (variable-length training batches)."""
    from torch._dynamo.utils import counters

    mlm, flow = _mlm(), _flow()
    mlm_c, flow_c = compiled(mlm), compiled(flow)
    with torch.no_grad():
        graphs: list[int] = []
        for batch, length in [(2, 11), (3, 14), (4, 19)]:
            ids = _ids(batch, length)
            assert_same_outputs(mlm_c(ids), mlm(ids))
            graphs.append(counters["stats"]["unique_graphs"])
        assert graphs[2] == graphs[1], f"graphs compiled after each call: {graphs}"
        for height, width in [(20, 30), (23, 37)]:  # 2×2 and 2×3 tiles of 12×16
            frames = _frames(height, width, batch=1)
            assert_same_outputs(flow_c(frames), flow(frames))


def test_explain_finds_no_graph_breaks() -> None:
    """``torch._dynamo.explain`` on the model with the most Python-level control flow (a dict of modalities,
    skipped modalities, chunked decoding): one graph and its break reasons listed should any appear."""
    model, args, kwargs = CASES["multimodal-chunked-full-decode"]()
    with torch.no_grad():
        explanation = torch._dynamo.explain(model)(*args, **kwargs)
    reasons = [f"{b.reason} at {b.user_stack[-1].filename}:{b.user_stack[-1].lineno}" if b.user_stack else b.reason
               for b in explanation.break_reasons]
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, reasons


def _gradients(model: nn.Module) -> dict[str, Tensor]:
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert grads, "no parameter received a gradient"
    return grads


def _backward_matches(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """One training-mode forward and backward, compiled and eager from identical copies: same loss, same
    gradient for every parameter, same buffers afterwards (batch-norm running statistics)."""
    eager, other = model.train(), copy.deepcopy(model).train()
    expected = eager(*args, **kwargs)
    expected.loss.backward()
    actual = compiled(other)(*args, **kwargs)
    actual.loss.backward()
    assert_same_outputs(actual, expected)
    reference = _gradients(eager)
    grads = _gradients(other)
    assert grads.keys() == reference.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], reference[name], atol=1e-6, rtol=0, msg=lambda m, n=name: f"{n}: {m}")
    for (name, a), (_, b) in zip(other.named_buffers(), eager.named_buffers()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=lambda m, n=name: f"buffer {n}: {m}")


@pytest.mark.parametrize("checkpointing", [False, True], ids=["plain", "activation-checkpointing"])
def test_mlm_training_backward_matches_eager(checkpointing: bool) -> None:
    model = _mlm()
    model.perceiver.encoder.gradient_checkpointing = checkpointing
    points = torch.tensor([[1, 2, 5], [0, 4, 6]])
    _backward_matches(model, (_ids(), _padding_mask(), _ids()), {"output_points": points})


@pytest.mark.parametrize("learned", [False, True], ids=["conv-fourier", "conv1x1-learned"])
def test_image_classifier_training_backward_matches_eager(learned: bool) -> None:
    model = _image("conv1x1" if learned else "conv", learned=learned)
    _backward_matches(model, (_images(), torch.tensor([4, 1])), {})


def test_bad_inputs_keep_their_error_messages_under_compile() -> None:
    """Shape and dtype checks still run under compile. With ``fullgraph=True`` Dynamo reports the raised error
    with our message; the default ``torch.compile`` falls back to eager and raises our exception itself."""
    model = _mlm()
    message = r"labels must have the shape of input_ids \(2, 11\), got \(2, 5\)"
    with pytest.raises(Exception, match=message):
        compiled(model)(_ids(), labels=_ids()[:, :5])
    torch._dynamo.reset()
    with pytest.raises(ValueError, match=message):
        torch.compile(model, backend="eager")(_ids(), labels=_ids()[:, :5])
    with pytest.raises(ValueError, match="need inputs of the training size"):
        torch.compile(_flow(), backend="eager")(_frames(20, 30), output_points=torch.tensor([0]))


def test_input_checks_compile_fullgraph() -> None:
    """enable_input_checks() traces as one graph; under compile a NaN still fails, inside the graph."""
    model = _image("pixels").enable_input_checks()
    images = _images()
    with torch.no_grad():
        assert_same_outputs(compiled(model)(images), model(images))
        bad = images.clone()
        bad[0, 0, 0, 0] = float("nan")
        with pytest.raises(RuntimeError, match="NaN or infinite"):
            compiled(model)(bad)


@pytest.mark.slow
def test_inductor_backend_matches_eager() -> None:
    """The real compiler (generated C++ kernels on CPU) on the smallest model; fusion may reorder float sums."""
    model = _point_cloud()
    points = torch.randn(2, 20, 3, generator=torch.Generator().manual_seed(5))
    labels = torch.tensor([2, 0])
    with torch.no_grad():
        expected = model(points, labels)
        actual = compiled(model, backend="inductor")(points, labels)
    assert_same_outputs(actual, expected, atol=1e-5, rtol=1e-5)
