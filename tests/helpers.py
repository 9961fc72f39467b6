"""Helpers shared by engine tests."""

import json
import struct


def rewrite_metadata(path, **changes):
    """Change entries of a safetensors file's ``__metadata__`` in place (to fake other versions etc.)."""
    payload = path.read_bytes()
    (length,) = struct.unpack("<Q", payload[:8])
    header = json.loads(payload[8: 8 + length])
    header["__metadata__"].update(changes)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + payload[8 + length:])
