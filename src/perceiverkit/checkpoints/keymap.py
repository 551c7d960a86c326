"""Applying a key table: renaming (and fusing) checkpoint tensors into our parameter names, reporting mismatches;
and reading a table backwards, to save our tensors under the checkpoint's names (splitting fused ones).

The tables themselves are built next to each task from the blocks in :mod:`perceiverkit.tasks.transformers_keys`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..tasks.transformers_keys import KeyRule


@dataclass
class ConversionReport:
    """What did not line up between a checkpoint and a model, by name."""

    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 20) -> str:
        parts = []
        for title, names in (("missing", self.missing), ("unexpected", self.unexpected),
                             ("mis-shaped", self.mismatched)):
            if names:
                shown = ", ".join(names[:limit]) + (f", … ({len(names) - limit} more)" if len(names) > limit else "")
                parts.append(f"{len(names)} {title}: {shown}")
        return "; ".join(parts)


class CheckpointMismatchError(ValueError):
    """A checkpoint's tensors do not match the model: missing, unexpected or mis-shaped, listed by name."""

    def __init__(self, report: ConversionReport, where: str = "checkpoint") -> None:
        super().__init__(f"{where} does not match the model: {report.describe()}")
        self.report = report


def apply_rules(
    source: Mapping[str, Tensor],
    rules: Iterable[KeyRule],
    expected: Mapping[str, tuple[int, ...]],
) -> tuple[dict[str, Tensor], ConversionReport]:
    """Rename (and fuse) ``source`` tensors by ``rules`` into our names; report every discrepancy against the
    ``expected`` shapes of the model's parameters."""
    rules = list(rules)
    converted: dict[str, Tensor] = {}
    used: set[str] = set()
    missing: list[str] = []
    mismatched: list[str] = []
    for r in rules:
        absent = [s for s in r.sources if s not in source]
        if absent:
            missing.extend(absent)
            continue
        used.update(r.sources)
        parts = [source[s] for s in r.sources]
        tensor = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
        converted[r.target] = tensor
    targets = {r.target for r in rules}
    for name, shape in expected.items():
        if name not in converted:
            if name not in targets:
                missing.append(name)
        elif tuple(converted[name].shape) != tuple(shape):
            mismatched.append(f"{name} (checkpoint {tuple(converted[name].shape)}, model {tuple(shape)})")
    unexpected = sorted(set(source) - used) + sorted(set(converted) - set(expected))
    return converted, ConversionReport(sorted(set(missing)), unexpected, mismatched)


def invert_rules(
    ours: Mapping[str, Tensor],
    rules: Iterable[KeyRule],
    part_sizes: Callable[[KeyRule, Tensor], Sequence[int]],
) -> dict[str, Tensor]:
    """The inverse of :func:`apply_rules`: our tensors renamed back into the checkpoint's names. A tensor that
    several sources fill is split along the first axis into ``part_sizes(rule, tensor)`` rows. Every tensor of
    ``ours`` must be some rule's target (else :class:`CheckpointMismatchError` names the ones left over)."""
    rules = list(rules)
    targets = {r.target for r in rules}
    missing, unmapped = sorted(targets - set(ours)), sorted(set(ours) - targets)
    if missing or unmapped:
        raise CheckpointMismatchError(ConversionReport(missing, unmapped, []), "the key table")
    theirs: dict[str, Tensor] = {}
    for r in rules:
        tensor = ours[r.target]
        parts = [tensor] if len(r.sources) == 1 else tensor.split(list(part_sizes(r, tensor)), dim=0)
        if len(parts) != len(r.sources):
            raise ValueError(f"{r.target} splits into {len(parts)} parts, but the table names {len(r.sources)}")
        # Clones: split parts are views of one storage, which a safetensors file cannot hold.
        theirs.update((source, part.contiguous().clone()) for source, part in zip(r.sources, parts, strict=True))
    return theirs
