"""Typed errors for user mistakes: each carries one sentence a biologist can act on."""


class AttnSegError(Exception):
    """Base class of every error napari-attnseg raises on purpose."""


class InputError(AttnSegError, ValueError):
    """An image, label or mask array that cannot be used."""


class ConfigError(AttnSegError, ValueError):
    """An option out of range or unknown."""


class ModelFileError(AttnSegError):
    """A model file that is missing, damaged, unsafe or from an unknown version."""


class DeviceError(AttnSegError, ValueError):
    """A device was asked for that this machine does not have."""


class SaveError(AttnSegError, OSError):
    """A file could not be written (disk full, read-only folder, no permission); nothing was replaced.

    It is an OSError too, so code that already catches OSError around a save keeps working.
    ``reason`` holds the few words on why ("the disk is full").
    """

    reason: str = ""
