"""Training callbacks: exact resumption of the data order."""

from __future__ import annotations

from typing import Any

import lightning as L

from .samplers import EpochSeededSampler


class ResumeDataOrder(L.Callback):
    """Before each training epoch, place the sampler where an uninterrupted run would be.

    The position follows from the number of batches consumed so far (``global_step × accumulation``), so a run
    resumed from any checkpoint — mid-epoch included — continues with exactly the batches it would have seen
    (Lightning alone restarts an interrupted epoch from its first batch). Works for any number of processes,
    since positions count global batches.
    """

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        loader = trainer.train_dataloader
        sampler = getattr(loader, "sampler", None)
        if not isinstance(sampler, EpochSeededSampler):
            return
        per_process = sampler.size // sampler.world_size
        batch_size = loader.batch_size
        full = per_process // batch_size if loader.drop_last else -(-per_process // batch_size)
        consumed = trainer.global_step * trainer.accumulate_grad_batches
        epoch, offset = divmod(consumed, full)
        sampler.set_position(epoch, offset * batch_size * sampler.world_size)
