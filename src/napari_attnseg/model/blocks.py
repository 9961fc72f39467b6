"""Building blocks of the attention U-Net.

References:
    Oktay et al. 2018, "Attention U-Net: Learning Where to Look for the Pancreas", arXiv:1804.03999
    (additive attention gates). Hu et al. 2018, "Squeeze-and-Excitation Networks", arXiv:1709.01507.
    Wang et al. 2018, "Non-local Neural Networks", arXiv:1711.07971.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by batch norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018, Fig. 2).

    The gating signal ``g`` comes from the coarser decoder level (half the skip's resolution), as in
    the paper; the skip ``x`` is brought to that grid by a strided 2x2 convolution, the two are added,
    passed through ReLU, a 1x1 convolution and a sigmoid, and the coefficients are resampled back to
    the skip's resolution to scale it.
    """

    def __init__(self, skip_channels: int, gate_channels: int, inter_channels: int) -> None:
        super().__init__()
        self.theta_x = nn.Conv2d(skip_channels, inter_channels, 2, stride=2, bias=False)
        self.phi_g = nn.Conv2d(gate_channels, inter_channels, 1, bias=True)
        self.psi = nn.Conv2d(inter_channels, 1, 1, bias=True)
        self.project = nn.Sequential(
            nn.Conv2d(skip_channels, skip_channels, 1, bias=False), nn.BatchNorm2d(skip_channels)
        )

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the gated skip and the attention coefficients (N, 1, H, W) in [0, 1]."""
        theta = self.theta_x(x)
        phi = self.phi_g(g)
        if phi.shape[-2:] != theta.shape[-2:]:
            phi = F.interpolate(phi, size=theta.shape[-2:], mode="bilinear", align_corners=False)
        coarse_alpha = torch.sigmoid(self.psi(F.relu(theta + phi)))
        # In float32: under CPU bf16 autocast the coefficients come out bf16, and this build's bf16
        # bilinear upsampling and broadcast product with x are several times slower than float32's
        # (the finest gate of 4 x 256² tiles: 7.4 -> 4.7 ms). A no-op without autocast.
        alpha = F.interpolate(coarse_alpha.float(), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.project(x * alpha), alpha


class SqueezeExcitation(nn.Module):
    """Channel attention (Hu et al. 2018): re-weights channels from their global averages."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.fc = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x)


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian self-attention over all positions (Wang et al. 2018), with a residual.

    The output projection starts at zero so a freshly inserted block is the identity.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        inter = max(channels // 2, 1)
        self.query = nn.Conv2d(channels, inter, 1)
        self.key = nn.Conv2d(channels, inter, 1)
        self.value = nn.Conv2d(channels, inter, 1)
        self.out = nn.Conv2d(inter, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        query = self.query(x).flatten(2).transpose(1, 2)  # N, HW, C'
        key = self.key(x).flatten(2).transpose(1, 2)
        value = self.value(x).flatten(2).transpose(1, 2)
        attended = F.scaled_dot_product_attention(query, key, value)
        attended = attended.transpose(1, 2).reshape(n, -1, h, w)
        return x + self.out(attended)
