"""Several modalities as one input array, and one decoded array back into several outputs.

Each modality's features are padded with a learned modality vector to a common width and concatenated along
the index axis (in sorted name order). Learned mask tokens replace a modality's inputs with a given
probability: the published autoencoder masks the label entirely so that it must be predicted.

The encoder also gets the same inputs as :class:`~perceiverkit.accel.SegmentedInputs`: modalities
that are raw features plus positions (and were not masked) keep their factored view, with the padding vector as
constant channels, so that the cross-attention can attend to them without projecting them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ..accel import FactoredInputs, SegmentedInputs, fast_paths_enabled
from ..interfaces import Preprocessor
from .base import Preprocessed


def _check_names(given: Mapping[str, object], expected: list[str], what: str) -> None:
    if not isinstance(given, Mapping):
        raise TypeError(f"{what} must be a dict keyed by modality ({expected}), got {type(given).__name__}")
    unknown, missing = sorted(set(given) - set(expected)), sorted(set(expected) - set(given))
    if unknown or missing:
        raise ValueError(f"{what} must have exactly the modalities {expected}; "
                         f"unknown: {unknown or 'none'}, missing: {missing or 'none'}")


def _num_channels(name: str, module: nn.Module) -> int:
    if not isinstance(module, Preprocessor):
        raise TypeError(f"modality {name!r} must be a preprocessor with num_channels, got {type(module).__name__}")
    return module.num_channels


class MultimodalPreprocessor(nn.Module):
    """``{name: raw input}`` → one ``(B, N, C)`` array with ``modality_sizes``.

    Args:
        modalities: a preprocessor per modality (each with ``num_channels`` and returning ``Preprocessed``).
        min_padding_size: padding channels added to the widest modality.
        mask_probs: per-modality probability of replacing each input element with the modality's mask token.
            During training each element is masked at random; in eval mode only a probability of 1 masks.
    """

    def __init__(
        self,
        modalities: Mapping[str, nn.Module],
        min_padding_size: int = 2,
        mask_probs: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        if not modalities:
            raise ValueError("a multimodal preprocessor needs at least one modality")
        self.names = sorted(modalities)
        self.modalities = nn.ModuleDict(modalities)
        widths = {name: _num_channels(name, m) for name, m in modalities.items()}
        self.num_channels = max(widths.values()) + min_padding_size
        self.mask_probs = dict(mask_probs or {})
        unknown = sorted(set(self.mask_probs) - set(self.names))
        if unknown:
            raise ValueError(f"mask_probs names unknown modalities {unknown}; modalities are {self.names}")
        for name, p in self.mask_probs.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"mask probability of {name!r} must lie in [0, 1], got {p}")
        self.padding = nn.ParameterDict({
            name: nn.Parameter(torch.randn(1, self.num_channels - width) * 0.02) for name, width in widths.items()
        })
        self.mask = nn.ParameterDict(
            {name: nn.Parameter(torch.randn(1, self.num_channels) * 0.02) for name in self.mask_probs}
        )

    def _masks(self, name: str) -> bool:
        """Whether :meth:`_mask` replaces any of this modality's inputs (training: p > 0; eval: p = 1)."""
        p = self.mask_probs.get(name, 0.0)
        return p > 0 and (self.training or p >= 1)

    def _mask(self, name: str, x: Tensor) -> Tensor:
        p = self.mask_probs.get(name, 0.0)
        if not self._masks(name):
            return x
        token = self.mask[name].to(x.dtype)
        if p >= 1:
            return token.expand_as(x)
        chosen = torch.rand(x.shape[:2], device=x.device) < p
        return torch.where(chosen[..., None], token, x)

    def forward(self, inputs: Mapping[str, Tensor]) -> Preprocessed:
        _check_names(inputs, self.names, "multimodal inputs")
        segments: list[Tensor | FactoredInputs] = []
        sizes: dict[str, int] = {}
        batch = None
        for name in self.names:
            pre = self.modalities[name](inputs[name])
            view = pre.encoder_inputs
            if batch is None:
                batch = view.shape[0]
            elif view.shape[0] != batch:
                raise ValueError(f"modality {name!r} has batch size {view.shape[0]}, others have {batch}")
            padding = self.padding[name].to(view.dtype)
            if isinstance(view, FactoredInputs) and view.constant is None and not self._masks(name):
                # Raw features + positions + the padding as constant channels: concatenated only if read.
                segments.append(dataclasses.replace(view, constant=padding[0]))
            else:
                x = pre.inputs
                segments.append(self._mask(name, torch.cat([x, padding.expand(x.shape[0], x.shape[1], -1)], dim=-1)))
            sizes[name] = view.shape[1]
        if not fast_paths_enabled():  # the reference: the modalities concatenated into one (B, N, C) array
            concatenated = torch.cat([s if isinstance(s, Tensor) else s.materialize() for s in segments], dim=1)
            return Preprocessed(inputs=concatenated, index_dims=(concatenated.shape[1],), modality_sizes=sizes)
        segmented = SegmentedInputs(tuple(segments))
        return Preprocessed.from_view(segmented, (segmented.shape[1],), modality_sizes=sizes)


class MultimodalPostprocessor(nn.Module):
    """``{name: decoded}`` → ``{name: output}`` with a postprocessor per modality (for those present)."""

    def __init__(self, modalities: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.modalities = nn.ModuleDict(modalities)

    def forward(self, decoded: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {name: self.modalities[name](value) for name, value in decoded.items()}
