"""Atomic file writes: a crash mid-write leaves the previous file intact (no torch, no Qt).

A write goes to ``.<name>.<pid>.<random>.part`` beside the target, is flushed to disk and renamed
over the target. A process killed mid-write leaves such a temporary behind; it is hidden (a dot
name), never read as data, and removed by the next save of the same file or by
:func:`remove_stale_temporaries` once the process that wrote it is gone.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
from pathlib import Path

from ..errors import SaveError

TEMP_SUFFIX = ".part"
_STALE_SECONDS = 24 * 3600  # where a writer's pid cannot be checked (Windows), age decides

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the folder is on a read-only file system",
    errno.EACCES: "there is no permission to write there (read-only folder?)",
    errno.EPERM: "there is no permission to write there (read-only folder?)",
}


def _write_all(handle: int, payload: bytes) -> None:
    """Write ``payload`` to the open file ``handle`` and flush it to disk (tests stand in faults here)."""
    with os.fdopen(handle, "wb") as stream:
        stream.write(payload)
        stream.flush()
        os.fsync(stream.fileno())


def describe_os_error(error: OSError) -> str:
    """A few words on why a write failed: "the disk is full", "… read-only …", or the system's text."""
    return _REASONS.get(error.errno, error.strerror or str(error))


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write to a temporary file beside ``path``, flush it to disk, then rename over ``path``.

    Raises:
        SaveError: the file could not be written; the previous ``path`` (if any) is untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent, path.name)
        # mkstemp creates the file readable by its owner only; a replaced file keeps its old mode,
        # a new one gets the usual rw-r--r-- (a model shipped in a package must be readable by all).
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX,
                                             dir=path.parent)
    except OSError as error:
        raise save_error(path, error) from error
    try:
        os.chmod(temporary, mode)
        _write_all(handle, payload)
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise save_error(path, error) from error
        raise


def save_error(path: Path, error: OSError) -> SaveError:
    reason = describe_os_error(error)
    return SaveError(f"could not save {path}: {reason}", reason=reason)


def remove_stale_temporaries(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Delete temporaries left in ``folder`` by writers that were killed (of ``name`` only, if given).

    A temporary whose writing process is still alive is kept. Returns the files removed.
    """
    folder = Path(folder)
    pattern = f".{name}.*{TEMP_SUFFIX}" if name else f".*{TEMP_SUFFIX}"
    removed = []
    try:
        candidates = list(folder.glob(pattern))
    except OSError:
        return removed
    for candidate in candidates:
        if _is_stale(candidate):
            try:
                candidate.unlink()
                removed.append(candidate)
            except OSError:
                pass  # another process removed it first, or we may not: it stays hidden either way
    return removed


def _is_stale(temporary: Path) -> bool:
    parts = temporary.name[: -len(TEMP_SUFFIX)].rsplit(".", 2)
    if os.name == "posix" and len(parts) == 3 and parts[1].isdigit():
        pid = int(parts[1])
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)  # signal 0 only asks whether the process exists
        except ProcessLookupError:
            return True
        except OSError:
            return False  # it exists but belongs to someone else
        return False
    try:
        return time.time() - temporary.stat().st_mtime > _STALE_SECONDS
    except OSError:
        return False
