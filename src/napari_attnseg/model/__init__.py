"""The attention U-Net and its blocks."""

from .unet import ATTENTION_REGISTRY, AttentionUNet, build_network, count_parameters

__all__ = ["ATTENTION_REGISTRY", "AttentionUNet", "build_network", "count_parameters"]
