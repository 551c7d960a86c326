"""A sampler whose order depends only on (seed, epoch), shared out between processes, and which can start
mid-epoch: a resumed or distributed run sees exactly the global batches of an uninterrupted single run."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler


class EpochSeededSampler(Sampler[int]):
    """Orders ``range(size)`` — shuffled by a generator seeded with ``seed`` and the epoch, or in order — and
    gives process ``rank`` of ``world_size`` every ``world_size``-th item of it. With per-process batch ``B``,
    the processes' k-th batches together are items ``[k·B·W, (k+1)·B·W)`` of the order: the k-th batch of a
    single process with batch ``B·W``. A tail of fewer than ``world_size`` items is left out.

    ``position``, when given, is asked at the start of each pass for ``(epoch, start)``: the epoch and how many
    items of its global order were already consumed. Training derives it from the optimiser step count, so a run
    resumed from any checkpoint — mid-epoch included — continues with exactly the batches an uninterrupted run
    would see (Lightning alone would restart an interrupted epoch from its first batch)."""

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1,
                 position: Callable[[], tuple[int, int]] | None = None) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size} processes")
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.position = position
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int) -> None:
        """Lightning's per-epoch call (ignored when ``position`` decides)."""
        self.epoch = epoch

    def order(self, epoch: int) -> torch.Tensor:
        """The epoch's global order, as a tensor: a Python list of every index would cost ~36 bytes an item
        (600 MB for the 17 million windows of a 2 GB corpus), the tensor 8."""
        if not self.shuffle:
            return torch.arange(self.size)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=gen)

    def __len__(self) -> int:
        return self.size // self.world_size

    def __iter__(self) -> Iterator[int]:
        epoch, start = self.position() if self.position is not None else (self.epoch, 0)
        remaining = self.order(epoch)[start:]
        remaining = remaining[: len(remaining) - len(remaining) % self.world_size]
        return (int(i) for i in remaining[self.rank::self.world_size].numpy())
