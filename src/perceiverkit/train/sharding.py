"""Fully sharded data parallelism (FSDP2): each process keeps only its slice of every parameter, gradient and
optimiser state, and gathers a block's full weights just for the moment it runs.

``trainer.strategy: fsdp`` selects :class:`FullyShardedStrategy`. It is built on Lightning's
``ModelParallelStrategy`` and PyTorch's per-parameter sharding (``torch.distributed.fsdp.fully_shard``) rather
than Lightning's ``FSDPStrategy``, which wraps the older ``FullyShardedDataParallel`` class: that one refuses
to run without a GPU, while ``fully_shard`` runs on CPU processes (gloo) as well as on GPUs (NCCL), so the
same code path is tested in CI on two CPU processes and used on many GPUs.

Each attention block is its own sharding unit (its weights are gathered just before it runs and freed right
after), then the rest of the model (embeddings, position encodings, heads) forms the root unit. A model that
calls its blocks' parts itself rather than their ``forward`` (Perceiver AR) sets ``shard_blocks = False`` and is
one unit: its weights are gathered whole for each pass, while gradients and optimiser state stay sharded.

Under ``trainer.precision: bf16-mixed`` the units gather their weights in bf16 (FSDP2's mixed-precision policy):
half the all-gather traffic and half the memory of the gathered blocks, while each process keeps and updates its
float32 slice and gradients are reduced in float32. The forward pass then computes with bf16-rounded weights
everywhere, not only where autocast would have cast them (e.g. LayerNorm scales, embeddings, latents).
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import TYPE_CHECKING

import torch
from lightning.fabric.plugins.collectives.torch_collective import default_pg_timeout
from lightning.pytorch.strategies import ModelParallelStrategy
from torch import nn

from ..layers.blocks import CrossAttentionBlock, SelfAttentionBlock

if TYPE_CHECKING:
    from torch.distributed.device_mesh import DeviceMesh

#: The value of ``trainer.strategy`` that selects :class:`FullyShardedStrategy`.
FSDP = "fsdp"

#: Module types sharded as units of their own (the model's transformer layers).
SHARDED_UNITS: tuple[type[nn.Module], ...] = (CrossAttentionBlock, SelfAttentionBlock)
#: ``trainer.precision`` → dtype in which the sharded weights are gathered for computing (float32 otherwise).
#: fp16 (``16-mixed``) keeps gathering float32 weights: fp16 weights with loss scaling under FSDP are untested here.
GATHER_DTYPES: dict[str, torch.dtype] = {"bf16-mixed": torch.bfloat16}


def gather_dtype(precision: str | int | None) -> torch.dtype | None:
    """The dtype FSDP gathers weights in under Lightning's ``precision`` (None: as stored, float32)."""
    return GATHER_DTYPES.get(str(precision))


class FullyShardedStrategy(ModelParallelStrategy):
    """FSDP2 over every process of the job (all nodes × devices): one data-parallel mesh dimension, no tensor
    parallelism. Checkpoints are gathered into one full file on rank 0, as with the other strategies, so a run
    can resume under a different strategy or number of processes."""

    def __init__(self, save_distributed_checkpoint: bool = False, process_group_backend: str | None = None,
                 timeout: timedelta | None = default_pg_timeout) -> None:
        super().__init__(data_parallel_size=1, tensor_parallel_size=1,
                         save_distributed_checkpoint=save_distributed_checkpoint,
                         process_group_backend=process_group_backend, timeout=timeout)

    def setup_environment(self) -> None:
        # The world size is only known here (after the launcher has set nodes and devices).
        self._data_parallel_size = self.num_nodes * self.num_processes
        self._tensor_parallel_size = 1
        super().setup_environment()


def is_sharded(model: nn.Module) -> bool:
    """Whether ``fully_shard`` has been applied to ``model``."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def unsharded_class(model: nn.Module) -> type[nn.Module]:
    """The class ``model`` had before sharding (``fully_shard`` swaps in a subclass named ``FSDP<class>``)."""
    from torch.distributed.fsdp import FSDPModule

    for cls in type(model).__mro__:
        if issubclass(cls, nn.Module) and not issubclass(cls, FSDPModule):
            return cls
    raise AssertionError("unreachable: nn.Module itself is in the MRO of every module")


def shard_model(model: nn.Module, mesh: DeviceMesh, param_dtype: torch.dtype | None = None) -> nn.Module:
    """Apply ``fully_shard`` to each attention block of ``model``, then to ``model`` itself (in place).

    ``mesh`` is a one-dimensional device mesh over the data-parallel processes. Parameters are resharded after
    each block's forward pass (the memory-saving ZeRO-3 schedule). A block that runs several times in one
    forward pass (the encoder's weight-shared repeats) is gathered again at each call. ``param_dtype`` (e.g.
    bf16, see :func:`gather_dtype`): gather and compute with the weights in that dtype, reduce gradients in
    float32; the stored slices and the optimiser stay float32.
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    if param_dtype is not None and not param_dtype.is_floating_point:
        raise ValueError(f"param_dtype must be a floating-point dtype, got {param_dtype}")
    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32 if param_dtype else None)

    # FSDP warns at every step that a model output is a view (ours: a slice of the decoder's output), because
    # an in-place op on it would skip a gradient hook; the training modules only ever read their outputs.
    warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor", category=UserWarning)
    if is_sharded(model):
        return model
    # FSDP gathers a unit's weights in a hook on the unit's forward; a block whose parts the model calls directly
    # would be computed on its shards (mixed Tensor and DTensor operands), so such a model is not split by block.
    for module in list(model.modules()) if getattr(model, "shard_blocks", True) else []:
        if isinstance(module, SHARDED_UNITS):
            fully_shard(module, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    return model


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The complete (unsharded) weights of ``model`` on CPU; every process must call it, since each holds a
    slice. An unsharded model's own state dict is returned unchanged."""
    if not is_sharded(model):
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    full: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        # Gathered in full, every entry is a plain tensor (no DTensor slices; our modules keep no extra state).
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"gathered state dict entry {key!r} is a {type(value).__name__}, expected a tensor")
        full[key] = value
    return full


__all__ = ["FSDP", "GATHER_DTYPES", "SHARDED_UNITS", "FullyShardedStrategy", "full_state_dict", "gather_dtype",
           "is_sharded", "shard_model", "unsharded_class"]
