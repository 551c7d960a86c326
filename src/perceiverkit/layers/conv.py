"""The convolutional stem of the conv-preprocessing ImageNet model."""

from __future__ import annotations

from torch import Tensor, nn


class ConvDownsample(nn.Module):
    """``num_layers`` × (7×7 stride-2 conv without bias → batch norm → ReLU → 3×3 stride-2 max-pool): 4× per layer.

    The convolution pads 3 pixels on every side and the pool does not pad, as in Transformers' port of the
    published weights (the original used TensorFlow's asymmetric 'SAME' padding).
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int = 1, use_batchnorm: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers += [
                nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(out_channels) if use_batchnorm else nn.Identity(),
                nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
            ]
        self.layers = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images)
