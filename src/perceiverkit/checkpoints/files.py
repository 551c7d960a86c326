"""Reading tensors from checkpoint files: safetensors first, pickle files only with ``weights_only=True``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor

from ..errors import PerceiverKitError

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE = "pytorch_model.bin"
PICKLE_INDEX = "pytorch_model.bin.index.json"


@contextmanager
def temporary_names(*final: Path) -> Iterator[tuple[Path, ...]]:
    """Names to write ``final``'s files under (``.name.tmp`` beside each): renamed into place when the block
    succeeds, removed when it fails, so an interrupted save never leaves a half-written checkpoint behind."""
    temporary = tuple(path.with_name(f".{path.name}.tmp") for path in final)
    try:
        yield temporary
        for tmp, path in zip(temporary, final, strict=True):
            os.replace(tmp, path)
    finally:  # after success the temporary names are gone already
        for tmp in temporary:
            tmp.unlink(missing_ok=True)


class CheckpointNotFoundError(PerceiverKitError, FileNotFoundError):
    """No checkpoint could be found or fetched for a source."""


def _load_pickle(path: Path) -> dict[str, Tensor]:
    # weights_only=True refuses to build arbitrary objects, so a crafted file cannot run code while loading.
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler raises many types; the message is what matters
        raise ValueError(f"refusing to load {path}: it is not a plain tensor checkpoint ({error})") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a mapping of parameter names to tensors")
    return state


def _load_sharded(directory: Path, index_name: str, loader: object) -> dict[str, Tensor]:
    index = json.loads((directory / index_name).read_text())
    state: dict[str, Tensor] = {}
    for shard in sorted(set(index["weight_map"].values())):
        state.update(loader(directory / shard))  # type: ignore[operator]
    return state


def load_state_dict(directory: Path) -> dict[str, Tensor]:
    """All tensors of the checkpoint in ``directory`` (single file or sharded), preferring safetensors."""
    if (directory / SAFETENSORS).is_file():
        return load_file(directory / SAFETENSORS)
    if (directory / SAFETENSORS_INDEX).is_file():
        return _load_sharded(directory, SAFETENSORS_INDEX, load_file)
    if (directory / PICKLE).is_file():
        return _load_pickle(directory / PICKLE)
    if (directory / PICKLE_INDEX).is_file():
        return _load_sharded(directory, PICKLE_INDEX, _load_pickle)
    raise CheckpointNotFoundError(
        f"no weights in {directory}: expected {SAFETENSORS}, {SAFETENSORS_INDEX}, {PICKLE} or {PICKLE_INDEX}"
    )
