"""Weight initialisation shared by every model (truncation-free normal, as in the published models)."""

from __future__ import annotations

from torch import nn

from .position import TrainablePositionEncoding


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Initialise ``module`` and its children: N(0, std) weights and embeddings, zero biases, unit norms."""
    from ..encoder import PerceiverEncoder  # the latent array lives on the encoder

    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=std)
        elif isinstance(m, (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, TrainablePositionEncoding):
            nn.init.normal_(m.embeddings, std=std)
        elif isinstance(m, PerceiverEncoder):
            nn.init.normal_(m.latents, std=std)
