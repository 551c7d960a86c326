"""LightningModules: one per kind of task, all sharing optimiser set-up, logging and checkpoint-friendly state.

Each task names its module in its :class:`~perceiverkit.tasks.registry.TaskSpec` (``lightning_module``).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, cast

import lightning as L
import torch
from torch import Tensor

from ..checkpoints.training_runs import RECORD_KEY, model_record
from ..tasks.base import TaskModel
from ..tasks.flow import OpticalFlow
from ..tasks.multimodal import IMAGE, MultimodalAutoencoder, autoencoding_targets
from .config import OptimConfig
from .optim import Lamb, adamw, warmup_cosine
from .sharding import gather_dtype, shard_model


def _no_decay(name: str, param: Tensor) -> bool:
    # Biases, norm scales, embeddings, latents and learned positions are not decayed (standard practice).
    return param.dim() < 2 or "embedding" in name or name.endswith("latents") or "padding" in name or ".mask." in name


class PerceiverModule(L.LightningModule, abc.ABC):
    """Trains a :class:`TaskModel`. Subclasses implement :meth:`compute` → (loss, metrics), and name in
    ``monitor`` the validation metric that ranks their checkpoints, with its better direction."""

    monitor: ClassVar[tuple[str, Literal["min", "max"]]] = ("val/loss", "min")

    def __init__(self, model: TaskModel[Any], optim: OptimConfig, total_steps: int) -> None:
        super().__init__()
        self.model = model
        self.optim = optim
        self.total_steps = total_steps

    @abc.abstractmethod
    def compute(self, batch: dict[str, Tensor], stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss and named metrics of one batch; ``stage`` is ``"train"``, ``"val"`` or ``"test"`` (the test
        split is measured exactly as validation is)."""

    def configure_model(self) -> None:
        # Lightning passes a device mesh only under FullyShardedStrategy: shard before the optimiser is built,
        # so that it only ever holds this process's slices of the parameters.
        if self.device_mesh is not None:
            shard_model(self.model, self.device_mesh["data_parallel"], gather_dtype(self.trainer.precision))

    def _batch_size(self, batch: Mapping[str, Tensor | Mapping[str, Tensor]]) -> int:
        first = next(iter(batch.values()))
        if isinstance(first, Mapping):  # multimodal inputs: a dict of modalities
            first = next(iter(first.values()))
        return int(first.shape[0])

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, metrics = self.compute(batch, "train")
        size = self._batch_size(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=size, sync_dist=False)
        for name, value in metrics.items():
            self.log(f"train/{name}", value, batch_size=size)
        return loss

    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        loss, metrics = self.compute(batch, stage)
        size = self._batch_size(batch)
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=size, sync_dist=True)
        for name, value in metrics.items():
            self.log(f"{stage}/{name}", value, prog_bar=True, batch_size=size, sync_dist=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """The validation metrics on the test split, as ``test/loss``, ``test/accuracy``, ..."""
        self._evaluate(batch, "test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning keeps the weights only; the record (task, config, processor) lets from_pretrained rebuild the
        # model from the .ckpt alone, as save_pretrained's model/ would hold it.
        checkpoint[RECORD_KEY] = model_record(self.model)

    def configure_optimizers(self) -> Any:
        decay: list[Tensor] = []
        no_decay: list[Tensor] = []
        for name, param in self.model.named_parameters():
            if param.requires_grad:
                (no_decay if _no_decay(name, param) else decay).append(param)
        groups = [{"params": decay, "weight_decay": self.optim.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        if self.optim.optimizer == "lamb":
            optimizer: torch.optim.Optimizer = Lamb(groups, lr=self.optim.lr, betas=self.optim.betas)
        elif self.optim.optimizer == "sgd":
            optimizer = torch.optim.SGD(groups, lr=self.optim.lr, momentum=self.optim.betas[0])
        else:
            # Lightning refuses to clip the gradients of an optimiser that unscales them inside its own step (the
            # fused kernel) under mixed precision, so a clipped mixed-precision run takes the unfused AdamW.
            trainer = self._trainer
            mixed = trainer is not None and "mixed" in str(trainer.precision) and bool(trainer.gradient_clip_val)
            optimizer = adamw(groups, lr=self.optim.lr, betas=self.optim.betas, fused=not mixed)
        scheduler = warmup_cosine(optimizer, self.optim.warmup_steps, self.total_steps, self.optim.min_lr_ratio)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def accuracy(logits: Tensor, targets: Tensor) -> Tensor:
    return (logits.argmax(-1) == targets).float().mean()


class MaskedLMModule(PerceiverModule):
    """Loss and accuracy at masked positions only; the decoder runs just those queries."""

    monitor = ("val/masked_accuracy", "max")

    def compute(self, batch: dict[str, Tensor], stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        points = batch["output_points"]
        out = self.model(batch["input_ids"], batch["attention_mask"], batch["labels"], output_points=points)
        targets = batch["labels"].gather(1, points)
        return out.loss, {"masked_accuracy": accuracy(out.logits, targets)}


class ClassificationModule(PerceiverModule):
    """Text, image and point-cloud classification: ``batch`` holds the model's inputs plus ``labels``."""

    monitor = ("val/accuracy", "max")

    def compute(self, batch: dict[str, Tensor], stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        out = self.model(**batch)
        return out.loss, {"accuracy": accuracy(out.logits, batch["labels"])}


class OpticalFlowModule(PerceiverModule):
    """End-point error on a random subset of ``num_points`` valid pixels per example (all pixels in validation).

    With ``middlebury_scale`` each validation also measures the EPE on the real Middlebury 2014 motorcycle
    pair resized by that factor (``val/middlebury_epe``; zero flow scores ``val/middlebury_zero_epe``).
    """

    monitor = ("val/epe", "min")

    def __init__(self, model: TaskModel[Any], optim: OptimConfig, total_steps: int, num_points: int = 2048,
                 middlebury_scale: float | None = None) -> None:
        super().__init__(model, optim, total_steps)
        self.num_points = num_points
        if middlebury_scale is not None and not 0 < middlebury_scale <= 1:
            raise ValueError(f"task_options.middlebury_scale must lie in (0, 1], got {middlebury_scale}")
        self.middlebury_scale = middlebury_scale

    def on_validation_epoch_end(self) -> None:
        if self.middlebury_scale is None or self.trainer.sanity_checking:
            return
        from ..evaluation.middlebury import evaluate_flow_on_motorcycle

        result = evaluate_flow_on_motorcycle(cast(OpticalFlow, self.model), self.middlebury_scale)
        assert not isinstance(result, tuple)
        self.log("val/middlebury_epe", result.epe, prog_bar=True, sync_dist=False)
        self.log("val/middlebury_zero_epe", result.zero_flow_epe, sync_dist=False)

    def compute(self, batch: dict[str, Tensor], stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        frames, target, valid = batch["frames"], batch["flow"], batch["valid"]
        b, h, w, _ = target.shape
        if stage == "train":
            # Rank random scores, invalid pixels last: a dense (B, Q) set of mostly valid points per example.
            scores = torch.rand(b, h * w, device=frames.device) + (~valid.reshape(b, -1)).float()
            points = scores.topk(min(self.num_points, h * w), dim=1, largest=False).indices
            pred = self.model(frames, output_points=points).flow
            gt = target.reshape(b, -1, 2).gather(1, points[..., None].expand(-1, -1, 2))
            ok = valid.reshape(b, -1).gather(1, points)
        else:
            pred, gt, ok = self.model(frames).flow, target, valid
        epe = (pred - gt).norm(dim=-1)
        loss = (epe * ok).sum() / ok.sum().clamp(min=1)
        return loss, {"epe": loss.detach()}


class AutoencoderModule(PerceiverModule):
    """The published weighted L1 + cross-entropy objective on random subsets of pixels and audio patches."""

    monitor = ("val/video_psnr", "max")

    def __init__(self, model: TaskModel[Any], optim: OptimConfig, total_steps: int, image_points: int = 4096,
                 audio_points: int = 256) -> None:
        if not isinstance(model, MultimodalAutoencoder):
            raise TypeError(f"AutoencoderModule trains a MultimodalAutoencoder, got {type(model).__name__}")
        super().__init__(model, optim, total_steps)
        self.image_points = image_points
        self.audio_points = audio_points

    @property
    def autoencoder(self) -> MultimodalAutoencoder:
        return cast(MultimodalAutoencoder, self.model)  # checked in __init__

    def compute(self, batch: dict[str, Tensor], stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        model = self.autoencoder
        outputs = model.config.num_outputs()
        gen = None if stage == "train" else torch.Generator().manual_seed(0)  # fixed points for comparable val
        points = model.sample_points(min(self.image_points, outputs["image"]), min(self.audio_points, outputs["audio"]),
                                     generator=gen, device=batch["image"].device)
        logits = model(batch, points).logits
        loss, terms = model.loss(batch, logits, points)
        pixels = autoencoding_targets(batch, points, model.config)[IMAGE]  # (B, Q, 3)
        video_mse = ((logits[IMAGE].clamp(0, 1) - pixels) ** 2).mean()
        psnr = -10 * torch.log10(video_mse.clamp(min=1e-10))
        return loss, {"video_psnr": psnr.detach(), **{f"{k}_loss": v.detach() for k, v in terms.items()}}
