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


class OutOfMemory(AttnSegError, MemoryError):
    """Not enough memory for a job even after shrinking tiles and batches."""


class ExportError(AttnSegError):
    """A model could not be exported, or the exported file does not reproduce the model."""


class MissingExtraError(AttnSegError, ImportError):
    """An optional dependency is not installed; the message names the pip extra to install."""


class SaveError(AttnSegError, OSError):
    """A file could not be written (disk full, read-only folder, no permission); nothing was replaced.

    It is an OSError too, so code that already catches OSError around a save keeps working.
    ``reason`` holds the few words on why ("the disk is full"), for callers that phrase their own
    sentence around it.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason
