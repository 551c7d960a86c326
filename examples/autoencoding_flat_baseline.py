"""How much better than a flat frame is the shipped video + audio autoencoder?

Scores ``multimodal-autoencoder-small`` (or ``--model``) and a trivial baseline — every pixel of a window predicted
as that window's mean colour — on the same held-out windows and the same sampled pixels as training validation
(the packaged ``autoencoding`` config's data, points drawn with seed 0, video PSNR per batch averaged over
windows). Run from the repository root::

    python examples/autoencoding_flat_baseline.py
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from perceiverkit import from_pretrained
from perceiverkit.pipelines.autoencode import psnr
from perceiverkit.resources import packaged_config
from perceiverkit.tasks.multimodal import IMAGE, MultimodalAutoencoder, autoencoding_targets
from perceiverkit.tasks.registry import get_task
from perceiverkit.train.evaluate import read_evaluation_data


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="multimodal-autoencoder-small")
    parser.add_argument("--config", default="autoencoding", help="the packaged config whose data to use")
    args = parser.parse_args()
    model = from_pretrained(args.model).eval()
    assert isinstance(model, MultimodalAutoencoder), f"{args.model} is not a multimodal autoencoder"
    data = read_evaluation_data(packaged_config(args.config))
    module = get_task(model.task).data_source_class(data.spec.source)(data.spec, model.config, data.seed)
    module.setup("validate")
    image_points = int(data.task_options.get("image_points", 4096))
    audio_points = int(data.task_options.get("audio_points", 256))
    outputs = model.config.num_outputs()
    totals, windows = {"model": 0.0, "flat": 0.0}, 0
    for batch in module.val_dataloader():
        points = model.sample_points(min(image_points, outputs["image"]), min(audio_points, outputs["audio"]),
                                     generator=torch.Generator().manual_seed(0))  # as validation draws them
        pixels = autoencoding_targets(batch, points, model.config)[IMAGE]  # (B, Q, 3)
        reconstruction = model(batch, points).logits[IMAGE].clamp(0, 1)
        flat = batch["image"].mean(dim=(1, 3, 4))[:, None, :]  # (B, 1, 3): each window's mean colour
        size = len(batch["image"])
        totals["model"] += size * psnr(reconstruction.numpy(), pixels.numpy())
        totals["flat"] += size * psnr(np.broadcast_to(flat.numpy(), pixels.shape), pixels.numpy())
        windows += size
    print(f"{windows} held-out windows: {args.model} {totals['model'] / windows:.2f} dB, "
          f"flat mean-colour frame {totals['flat'] / windows:.2f} dB (video PSNR)")


if __name__ == "__main__":
    main()
