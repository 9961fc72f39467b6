"""A 2D U-Net with pluggable attention on its skips and bottleneck."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .blocks import AttentionGate, ConvBlock, NonLocalBlock, SqueezeExcitation


class _SkipIdentity(nn.Module):
    def forward(self, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        return x, None


class _SkipSE(nn.Module):
    def __init__(self, skip_channels: int) -> None:
        super().__init__()
        self.se = SqueezeExcitation(skip_channels)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.se(x), None


SkipFactory = Callable[[int, int], nn.Module]
BottleneckFactory = Callable[[int], nn.Module]

#: attention type -> (module on each skip, taking (skip, gate); module after the bottleneck)
ATTENTION_REGISTRY: dict[str, tuple[SkipFactory, BottleneckFactory]] = {
    "gate": (lambda skip, gate: AttentionGate(skip, gate, max(skip // 2, 1)), lambda c: nn.Identity()),
    "se": (lambda skip, gate: _SkipSE(skip), lambda c: SqueezeExcitation(c)),
    "nonlocal": (lambda skip, gate: _SkipIdentity(), NonLocalBlock),
    "none": (lambda skip, gate: _SkipIdentity(), lambda c: nn.Identity()),
}


class AttentionUNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) with attention from ``ATTENTION_REGISTRY``.

    Inputs of any spatial size are padded (reflect) to the network's multiple and the output is
    cropped back, so ``forward`` returns logits with the input's height and width.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.base_width * 2**level for level in range(config.depth)]
        skip_factory, bottleneck_factory = ATTENTION_REGISTRY[config.attention]

        self.encoders = nn.ModuleList([ConvBlock(config.in_channels, widths[0])])
        for level in range(1, config.depth):
            self.encoders.append(ConvBlock(widths[level - 1], widths[level]))
        self.bottleneck = bottleneck_factory(widths[-1])

        self.skip_attention = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in reversed(range(config.depth - 1)):
            self.skip_attention.append(skip_factory(widths[level], widths[level + 1]))
            self.upsamples.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2))
            self.decoders.append(ConvBlock(2 * widths[level], widths[level]))
        self.head = nn.Conv2d(widths[0], config.n_classes, 1)

    def forward(
        self, image: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Class logits (N, n_classes, H, W); with ``return_attention`` also the gate maps.

        The gate maps are a list, finest level first, of (N, 1, H, W) coefficients in [0, 1] resized
        to the input size; empty for attention types without spatial coefficients.
        """
        height, width = image.shape[-2:]
        padded = _pad_to_multiple(image, self.config.multiple)

        features = []
        current = padded
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                current = F.max_pool2d(current, 2)
            current = encoder(current)
            features.append(current)
        current = self.bottleneck(current)

        attention_maps = []
        for index, (attend, upsample, decode) in enumerate(
            zip(self.skip_attention, self.upsamples, self.decoders)
        ):
            skip = features[-2 - index]
            gated_skip, alpha = attend(skip, current)
            if alpha is not None and return_attention:
                attention_maps.append(alpha)
            current = decode(torch.cat([gated_skip, upsample(current)], dim=1))
        logits = self.head(current)[..., :height, :width]
        if not return_attention:
            return logits
        resized = [
            F.interpolate(alpha, size=padded.shape[-2:], mode="bilinear", align_corners=False)[
                ..., :height, :width
            ]
            for alpha in reversed(attention_maps)
        ]
        return logits, resized


def _pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    if pad_h == 0 and pad_w == 0:
        return image
    # Reflection needs the pad to be smaller than the side; tiny inputs fall back to replication.
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)


def build_network(config: ModelConfig) -> AttentionUNet:
    """A freshly initialised network for ``config``."""
    return AttentionUNet(config)


def count_parameters(network: nn.Module) -> int:
    return sum(parameter.numel() for parameter in network.parameters())
