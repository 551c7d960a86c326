"""Weight initialisation shared by every model, following the published models' training code.

Linear and convolution weights use fan-in variance scaling (truncated normal with std 1/√fan_in): with the
small constant std of BERT-style init, queries and keys start so small that attention is uniform, every latent
reads the same average of the inputs, and small models barely learn. Embeddings, latents and learned positions
use a small constant std. A module with learned arrays of its own (the encoder's latents) names them in a
``learned_arrays`` class attribute, so that this module needs to know no model class.
"""

from __future__ import annotations

from torch import nn

from .position import TrainablePositionEncoding


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Initialise ``module`` and its children: fan-in scaled weights, zero biases, unit norms, and N(0, std)
    embeddings, latents, learned positions and modality vectors."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            fan_in = m.weight[0].numel()
            nn.init.trunc_normal_(m.weight, std=fan_in**-0.5, a=-2 * fan_in**-0.5, b=2 * fan_in**-0.5)
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
        for name in getattr(m, "learned_arrays", ()):
            nn.init.normal_(getattr(m, name), std=std)
