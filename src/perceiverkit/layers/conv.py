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


class ConvStem3x3(nn.Module):
    """A small stem for small images: ``num_layers`` × (3×3 conv → batch norm → ReLU).

    Channels double layer by layer up to ``out_channels``; a 2×2 max-pool follows each of the first
    ``log2(spatial_downsample)`` layers. Useful where the ImageNet stem's 4× reduction would leave too few
    grid points (28×28 Fashion-MNIST becomes 14×14 tokens with ``spatial_downsample=2``).
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int = 2, spatial_downsample: int = 2,
                 use_batchnorm: bool = True) -> None:
        super().__init__()
        pools = spatial_downsample.bit_length() - 1
        if 2**pools != spatial_downsample or pools > num_layers:
            raise ValueError(f"ConvStem3x3: spatial_downsample must be a power of 2 no larger than "
                             f"2**num_layers={2**num_layers}, got {spatial_downsample}")
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(num_layers):
            width = max(out_channels // 2 ** (num_layers - 1 - i), 1)
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=not use_batchnorm),
                nn.BatchNorm2d(width) if use_batchnorm else nn.Identity(),
                nn.ReLU(),
            ]
            if i < pools:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.layers = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images)
