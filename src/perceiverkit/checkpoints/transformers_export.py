"""Saving a model in Transformers' format: ``config.json`` + ``model.safetensors`` that ``transformers.PerceiverFor…``
loads with the same outputs.

Generic, like loading: the task registry names the architecture (:meth:`TaskSpec.transformers_for`), the task's
``config_to_hf`` writes the config (refusing, in one line naming the field, what Transformers cannot express) and
its key table, read backwards, renames our tensors into Transformers' (splitting fused projections).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import Tensor

from ..layers.attention import MultiHeadAttention
from ..tasks.base import TaskModel
from ..tasks.registry import get_task
from ..tasks.transformers_keys import KeyRule
from .files import SAFETENSORS, temporary_names
from .keymap import invert_rules
from .native import CONFIG_FILE
from .transformers_format import HF_CONFIG_FILE


def fused_part_sizes(model: TaskModel[Any]) -> Callable[[KeyRule, Tensor], Sequence[int]]:
    """How a fused projection of ``model`` splits back into Transformers' separate ones: our attention layers
    stack query, key and value (or key and value) along the output axis, at their own widths."""

    def sizes(rule: KeyRule, tensor: Tensor) -> Sequence[int]:
        owner_name, projection, _ = rule.target.rsplit(".", 2)
        owner = model.get_submodule(owner_name)
        if isinstance(owner, MultiHeadAttention):
            qk, v = owner.qk_channels, owner.v_channels
            if projection == "qkv_proj":
                return (qk, qk, v)
            if projection == "kv_proj":
                return (qk, v)
        raise ValueError(f"do not know how {rule.target} {tuple(tensor.shape)} splits into {list(rule.sources)}")

    return sizes


def save_transformers(model: TaskModel[Any], directory: str | os.PathLike[str]) -> Path:
    """Write ``config.json`` and ``model.safetensors`` in Transformers' format into ``directory`` (created if
    needed); returns the directory. A feature Transformers lacks raises :class:`ConfigError` naming the field,
    before anything is written."""
    arch = get_task(model.task).transformers_for(model.config)
    assert arch.config_to_hf is not None  # transformers_for picks only architectures that save
    hf_config = arch.config_to_hf(model.config)
    model.check_transformers_format()
    state = {name: t.detach().cpu() for name, t in model.state_dict().items()}
    tensors = invert_rules(state, arch.key_rules(model.config), fused_part_sizes(model))
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    with temporary_names(path / SAFETENSORS, path / HF_CONFIG_FILE) as (tmp_weights, tmp_config):
        save_file(tensors, tmp_weights, metadata={"format": "pt"})
        tmp_config.write_text(json.dumps(hf_config, indent=2) + "\n")
    # Our config would take precedence over config.json when loading, and no longer matches these weights.
    (path / CONFIG_FILE).unlink(missing_ok=True)
    return path
