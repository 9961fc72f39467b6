"""An inference-only copy of the network: batch norm folded into the convolutions, ReLU fused in.

In eval mode a batch norm is a fixed per-channel scale and shift, so it can live in the preceding
convolution's weights and bias; on CPUs, oneDNN then runs convolution and ReLU as one kernel. On
this project's build machine batch norm and ReLU were a third of the forward time (torch profiler,
4 x 256² tiles). The training network is never changed: the copy is rebuilt whenever its weights change.
"""

from __future__ import annotations

import copy
import logging
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime.memory import is_out_of_memory
from .blocks import AttentionGate, ConvBlock
from .unet import AttentionUNet

log = logging.getLogger(__name__)


def _has_onednn_pointwise() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):
        return False


_ONEDNN = {"usable": _has_onednn_pointwise()}


def fold_batch_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of one convolution equal (in eval mode) to ``norm(conv(x))``."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    weight = conv.weight * scale.reshape(-1, 1, 1, 1)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
    return weight.detach(), (norm.bias + (bias - norm.running_mean) * scale).detach()


class FusedConvReLU(nn.Module):
    """``relu(norm(conv(x)))`` of a ConvBlock as one convolution with a fused ReLU."""

    def __init__(self, conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
        super().__init__()
        weight, bias = fold_batch_norm(conv, norm)
        self.register_buffer("weight", weight.contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", bias)
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self._cast: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and _ONEDNN["usable"] and x.is_contiguous(memory_format=torch.channels_last):
            dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
            weight, bias = self._weights(dtype)
            try:
                return torch.ops.mkldnn._convolution_pointwise(
                    x.to(dtype), weight, bias, self.padding, self.stride, self.dilation, self.groups,
                    "relu", [], "")
            except RuntimeError as error:  # e.g. a CPU whose oneDNN build lacks this dtype
                if is_out_of_memory(error):
                    raise  # the caller retries with smaller tiles; the kernel itself is fine
                log.info("fused convolution unavailable (%s); using separate kernels", error)
                _ONEDNN["usable"] = False
        return F.relu(F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups))

    def _weights(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        if dtype not in self._cast:
            self._cast[dtype] = (self.weight.to(dtype), self.bias.to(dtype))
        return self._cast[dtype]


def _folded_conv(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> nn.Conv2d:
    weight, bias = fold_batch_norm(conv, norm)
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                       conv.dilation, conv.groups, bias=True)
    with torch.no_grad():
        folded.weight.copy_(weight)
        folded.bias.copy_(bias)
    return folded


def fuse_for_inference(network: AttentionUNet) -> AttentionUNet:
    """A copy of ``network`` for inference only, with the same outputs (to float rounding)."""
    fused = copy.deepcopy(network).eval()
    for modules in (fused.encoders, fused.decoders):
        for index, block in enumerate(modules):
            if isinstance(block, ConvBlock):
                modules[index] = nn.Sequential(FusedConvReLU(block[0], block[1]), FusedConvReLU(block[3], block[4]))
    for gate in fused.skip_attention:
        if isinstance(gate, AttentionGate):
            gate.project = _folded_conv(gate.project[0], gate.project[1])
    fused.requires_grad_(False)
    return fused.to(memory_format=torch.channels_last)


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def inference_network(network: nn.Module, device: torch.device) -> nn.Module:
    """The fused copy of an AttentionUNet on ``device``, cached until the network's weights change;
    any other network (an exported one, a stand-in) as it is."""
    if not isinstance(network, AttentionUNet):
        return network.eval().to(device)
    state = network.state_dict().values()
    if any(tensor.is_inference() for tensor in state):  # made under inference_mode: no version counters
        return fuse_for_inference(network).to(device)
    # Optimiser steps and load_state_dict bump the tensors' version counters.
    version = sum(tensor._version for tensor in state)
    cached = _CACHE.get(network)
    if cached is not None and cached[0] == (version, str(device)):
        return cached[1]
    fused = fuse_for_inference(network).to(device)
    _CACHE[network] = ((version, str(device)), fused)
    return fused
