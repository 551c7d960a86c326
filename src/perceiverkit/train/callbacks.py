"""Training callbacks: random state in checkpoints, and a checkpoint on SIGTERM."""

from __future__ import annotations

from typing import Any

import lightning as L


class RandomStateCheckpoint(L.Callback):
    """Store Python's, NumPy's and PyTorch's random states in checkpoints and restore them on resume, so that
    augmentation and dropout continue exactly as in an uninterrupted run. States are kept as tensors and plain
    numbers so that checkpoints stay loadable with ``weights_only=True``."""

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        import random

        import numpy as np
        import torch

        version, keys, gauss = random.getstate()
        # The dict form holds the same values as the default legacy tuple, and numpy's stubs type it correctly.
        np_state = np.random.get_state(legacy=False)
        checkpoint["random_state"] = {
            "python": {"version": version, "keys": torch.tensor(keys, dtype=torch.int64), "gauss": gauss},
            "numpy": {"keys": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                      "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                      "gauss": float(np_state["gauss"])},
            "torch": torch.get_rng_state(),
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        import random

        import numpy as np
        import torch

        state = checkpoint.get("random_state")
        if not state:
            return
        py = state["python"]
        random.setstate((py["version"], tuple(py["keys"].tolist()), py["gauss"]))
        npy = state["numpy"]
        np.random.set_state(("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                             npy["gauss"]))
        torch.set_rng_state(state["torch"])


class SaveOnSigterm(L.Callback):
    """On SIGTERM (e.g. a scheduler pre-empting the job), write ``last.ckpt`` after the current batch; Lightning
    then stops training and :func:`~perceiverkit.train.train` reports the run as interrupted."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if getattr(trainer, "received_sigterm", False):
            self._save(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # A signal that lands after this batch's on_train_batch_end is seen first by Lightning's own check at the
        # end of the step, which raises before the next batch: save here, the step is complete.
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(exception, SIGTERMException):
            self._save(trainer)

    def _save(self, trainer: L.Trainer) -> None:
        if not getattr(self, "_saved", False):
            trainer.save_checkpoint(self.path)
            self._saved = True
