"""Images and labels as the network and the metrics take them: checked, channels first, normalised."""

from __future__ import annotations

import numpy as np

from ..config import ModelConfig
from ..errors import InputError
from .modality import to_grey


def model_input(image, config: ModelConfig, channel_axis: int | None, modality: str = "auto"):
    """What ``config``'s network reads of ``image``: float32 (C, Y, X) or (Z, C, Y, X), not normalised,
    and the modality it was read as ("fluorescence", "brightfield", "he"; None for models that take
    the image as it is)."""
    if config.input_transform == "none":
        return as_channels_first(image, config.in_channels, channel_axis), None
    planes = as_channels_first(image, None, channel_axis)
    grey, used = to_grey(planes, modality)
    return grey, used


def as_channels_first(image: np.ndarray, in_channels: int | None, channel_axis: int | None) -> np.ndarray:
    """Validate ``image`` and return it as float32 (C, Y, X) or (Z, C, Y, X).

    Args:
        image: (Y, X), (Z, Y, X), or either with a channel axis given by ``channel_axis``.
        in_channels: channels the model expects (an RGB image becomes its mean for 1); None keeps them.
        channel_axis: index of the channel axis in ``image``, or None for single-channel images.
    """
    image = np.asarray(image)
    original_shape = image.shape
    if image.dtype == bool or image.dtype.kind not in "uif":
        raise InputError(f"image must hold numbers, got dtype {image.dtype}")
    if image.size == 0:
        raise InputError(f"image is empty (shape {image.shape})")
    if channel_axis is None and image.ndim == 3 and image.shape[-1] in (3, 4) and image.shape[0] > 4:
        channel_axis = -1  # napari's convention: a trailing axis of 3 or 4 is RGB(A)
    if channel_axis is not None:
        if image.ndim < 3:
            raise InputError(f"channel_axis={channel_axis} was given, but the image of shape {image.shape} "
                             "has no channel axis")
        if not -image.ndim <= channel_axis < image.ndim:
            raise InputError(f"channel_axis {channel_axis} does not exist in an image of shape {image.shape}")
        image = np.moveaxis(image, channel_axis, -3)
    elif image.ndim in (2, 3):
        image = np.expand_dims(image, -3)
    else:
        image = image[np.newaxis]  # fails the shape check below with the original shape
    if image.ndim not in (3, 4) or (channel_axis is None and image.ndim == 5):
        raise InputError(
            f"image of shape {original_shape} is neither (Y, X) nor (Z, Y, X); "
            "give channel_axis= for multichannel images"
        )
    given_axis = channel_axis is not None
    if in_channels is not None:
        image = match_channels(image, in_channels, f"the image of shape {original_shape}",
                               "; is channel_axis right?" if given_axis else "")
    if min(image.shape[-2:]) < 4:
        hint = ""
        if not given_axis and len(original_shape) == 3 and original_shape[-1] < 4:
            hint = f"; if its last axis holds {original_shape[-1]} channels, give channel_axis=-1"
        raise InputError(f"image is too small to segment: {image.shape[-2:]} pixels (needs at least 4x4){hint}")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise InputError("image contains NaN or infinite values; replace them before segmenting")
    with np.errstate(over="ignore"):
        image = image.astype(np.float32, copy=False)
    if not np.isfinite(image).all():
        raise InputError("image values exceed the float32 range (about 3.4e38); rescale the image")
    return image


def match_channels(image, in_channels: int, what: str = "the image", hint: str = ""):
    """A (..., C, Y, X) numpy or dask array with the model's channel count.

    An RGB(A) rendering of a single-channel stain, given to a 1-channel model, becomes the mean of its
    colour channels (alpha dropped); any other mismatch is an InputError.
    """
    channels = image.shape[-3]
    if channels == in_channels:
        return image
    if in_channels == 1 and channels in (3, 4):
        return image[..., :3, :, :].astype(np.float32).mean(axis=-3, keepdims=True)
    raise InputError(f"the model reads {in_channels} channel(s) but {what} has {channels}{hint}")


def percentile_range(image: np.ndarray, percentiles: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (low, scale) that map the low/high percentile to 0/1, shaped to broadcast against
    ``image``: (C, Y, X) and (Z, C, Y, X) have one range per channel (over the whole stack)."""
    image = np.asarray(image, dtype=np.float32)
    axes = tuple(range(image.ndim - 2, image.ndim)) if image.ndim >= 3 else None
    if image.ndim == 4:
        axes = (0, 2, 3)
    low, high = np.percentile(image, percentiles, axis=axes, keepdims=True)  # one partition for both
    scale = np.maximum(high - low, 1e-6 * np.maximum(np.abs(high), 1.0))
    return low.astype(np.float32), scale.astype(np.float32)


def normalize(image: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    """Map each channel's low/high percentile to 0/1 (float32, not clipped)."""
    image = np.asarray(image, dtype=np.float32)
    low, scale = percentile_range(image, percentiles)
    return ((image - low) / scale).astype(np.float32)


def check_labels(labels: np.ndarray, spatial_shape: tuple[int, ...], name: str = "labels") -> np.ndarray:
    """Validate an instance label image and return it as int32."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise InputError(f"{name} must hold whole numbers (instance ids), got non-integer floats")
    elif labels.dtype.kind not in "uib":
        raise InputError(f"{name} must be an integer array, got dtype {labels.dtype}")
    if labels.shape != tuple(spatial_shape):
        raise InputError(f"{name} shape {labels.shape} differs from the image's {tuple(spatial_shape)}")
    if labels.size and labels.min() < 0:
        raise InputError(f"{name} contains negative values; instance ids must be >= 0")
    if labels.size and labels.max() > np.iinfo(np.int32).max:
        raise InputError(f"{name} has ids too large for int32")
    return labels.astype(np.int32, copy=False)


def check_mask(mask: np.ndarray | None, spatial_shape: tuple[int, ...]) -> np.ndarray:
    """Validate a checked-pixels mask (None means every pixel was checked)."""
    if mask is None:
        return np.ones(spatial_shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != tuple(spatial_shape):
        raise InputError(f"mask shape {mask.shape} differs from the image's {tuple(spatial_shape)}")
    return mask.astype(bool, copy=False)
