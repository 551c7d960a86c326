"""Task heads shared by several modalities: the classification decoder, its config checks and its losses."""

from __future__ import annotations

import typing
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import DecoderConfig, EncoderConfig, PositionEncodingConfig, _check, _check_positive
from ..decoders import ClassificationDecoder

ProblemType = Literal["regression", "single_label_classification", "multi_label_classification"]
PROBLEM_TYPES: tuple[str, ...] = typing.get_args(ProblemType)


def check_labels(owner: str, num_labels: int, labels: tuple[str, ...] | None,
                 problem_type: str | None = None) -> None:
    """The checks every classifier config shares: a positive class count, one name per class when names are
    given, and a known ``problem_type``. ``owner`` names the config in the error."""
    _check_positive(owner, num_labels=num_labels)
    _check(problem_type is None or problem_type in PROBLEM_TYPES,
           f"{owner}.problem_type must be one of {list(PROBLEM_TYPES)} or None, got {problem_type!r}")
    _check(labels is None or len(labels) == num_labels,
           f"{owner}.labels names {len(labels or ())} classes, expected {num_labels}")


def classification_decoder(encoder: EncoderConfig, num_labels: int) -> ClassificationDecoder:
    """One learned latent-wide query with a query residual, projected to ``num_labels`` logits."""
    return ClassificationDecoder(
        DecoderConfig(
            output_index_dims=(1,),
            query_channels=encoder.d_latents,
            output_channels=num_labels,
            queries=PositionEncodingConfig(kind="trainable", num_channels=encoder.d_latents),
            use_query_residual=True,
            cross_attention_shape_for_attention=encoder.cross_attention_shape_for_attention,
            activation=encoder.activation,
            attention_dropout=encoder.attention_dropout,
        ),
        latent_channels=encoder.d_latents,
    )


def classification_loss(logits: Tensor, labels: Tensor, num_labels: int, problem_type: str | None) -> Tensor:
    """MSE for regression, cross-entropy for single-label and BCE-with-logits for multi-label problems."""
    if problem_type is None:
        if num_labels == 1:
            problem_type = "regression"
        elif labels.dtype in (torch.int32, torch.int64):
            problem_type = "single_label_classification"
        else:
            problem_type = "multi_label_classification"
    logits = logits.float()
    if problem_type == "regression":
        if num_labels == 1:
            return F.mse_loss(logits.squeeze(-1), labels.float().reshape(logits.shape[0]))
        return F.mse_loss(logits, labels.float())
    if problem_type == "single_label_classification":
        if labels.dtype.is_floating_point:
            raise TypeError("single-label classification needs integer class labels")
        return F.cross_entropy(logits, labels.reshape(-1))
    if tuple(labels.shape) != tuple(logits.shape):
        raise ValueError(f"multi-label targets must have shape {tuple(logits.shape)}, got {tuple(labels.shape)}")
    return F.binary_cross_entropy_with_logits(logits, labels.float())
