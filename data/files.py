"""Atomic file writes: a reader, a crash or a parallel worker writing the same file sees the old
file or the new one, never half of one."""

import contextlib
import os
import tempfile
from pathlib import Path

from data.errors import BadInput


def writable_file(path: Path, flag: str) -> Path:
    """``path`` if a file can be written there (the folders above it exist or can be made,
    and it is not a folder); BadInput naming ``flag`` otherwise. Checked before any work."""
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"{flag} {path} is a folder; pass a file name")
    writable_folder(path.parent, flag, path)
    return path


def writable_folder(folder: Path, flag: str, shown: Path | None = None) -> Path:
    """``folder`` if it is, or can be made, a folder this process can write in: the nearest
    part of it that exists is a folder that takes a new file (tried, then removed). Nothing is
    left behind, whatever the answer."""
    shown = shown if shown is not None else folder
    existing = Path(folder).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise BadInput(f"{flag} {shown}: {existing} is a file, not a folder; pick another path")
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".write-test-")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise BadInput(
            f"{flag} {shown}: cannot write in {existing} ({error.strerror}); pick another path"
        ) from None
    return Path(folder)


def write_atomically(path: Path, content: bytes) -> None:
    """Write ``content`` beside ``path``, flush it to disk, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
