"""A sampler whose order depends only on (seed, epoch), shared out between processes, and which can start
mid-epoch: a resumed or distributed run sees exactly the global batches of an uninterrupted single run."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSeededSampler(Sampler[int]):
    """Orders ``range(size)`` — shuffled by a generator seeded with ``seed`` and the epoch, or in order — and
    gives process ``rank`` of ``world_size`` every ``world_size``-th item of it. With per-process batch ``B``,
    the processes' k-th batches together are items ``[k·B·W, (k+1)·B·W)`` of the order: the k-th batch of a
    single process with batch ``B·W``. A tail of fewer than ``world_size`` items is left out.
    :meth:`set_position` makes the next pass start ``start`` items (of the global order) into an epoch."""

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size} processes")
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int) -> None:
        """Lightning's per-epoch call; a position set by :meth:`set_position` for this pass takes precedence."""
        if not self.start:
            self.epoch = epoch

    def set_position(self, epoch: int, start: int) -> None:
        self.epoch, self.start = epoch, start

    def order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=gen).tolist()

    def __len__(self) -> int:
        return (self.size - self.start) // self.world_size

    def __iter__(self) -> Iterator[int]:
        start, self.start = self.start, 0  # a mid-epoch start applies to one pass only
        remaining = self.order(self.epoch)[start:]
        remaining = remaining[: len(remaining) - len(remaining) % self.world_size]
        return iter(remaining[self.rank::self.world_size])
