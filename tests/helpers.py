"""Helpers shared by engine tests."""

import json
import struct
from pathlib import Path


def rewrite_metadata(path, **changes):
    """Change entries of a safetensors file's ``__metadata__`` in place (to fake other versions etc.)."""
    payload = path.read_bytes()
    (length,) = struct.unpack("<Q", payload[:8])
    header = json.loads(payload[8: 8 + length])
    header["__metadata__"].update(changes)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + payload[8 + length:])


REAL_IMAGES = Path(__file__).resolve().parent / "data" / "real"


def real_entries():
    """The committed real-image fixture (tests/data/real: DSB 2018 validation images, CC0)."""
    from napari_attnseg.datasets import dsb2018

    return dsb2018.read_manifest(REAL_IMAGES)


def real_pair(image_id: str):
    """(image, labels, channel_axis) of one fixture image."""
    from napari_attnseg.datasets import dsb2018

    [entry] = [entry for entry in real_entries() if entry.id == image_id]
    image, labels = dsb2018.load_pair(entry, REAL_IMAGES)
    return image, labels, dsb2018.channel_axis_of(entry)
