"""Writing files all or nothing: a failed write leaves the user's files as they were."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["atomic_write", "write_files"]


def _created_parents(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; return the ones made, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        made.mkdir()
    return list(reversed(missing))


def _new_file_mode(path: Path) -> int:
    """A replaced file keeps its mode; a new one gets what the user's umask gives (not mkstemp's 0600)."""
    if path.exists():
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_files(outputs: Sequence[tuple[str | Path, Callable[[Path], None]]]) -> None:
    """Write several files all or nothing.

    Each ``write(tmp)`` writes a temporary file beside its target; only when
    every one has succeeded are they all moved into place. If any fails, no
    target is touched, and the temporaries and any folders made for them are
    removed. A replaced file keeps its mode; a new one gets the umask's.
    """
    made: list[Path] = []
    staged: list[tuple[Path, Path]] = []
    try:
        for path, write in outputs:
            path = Path(path)
            try:
                made += _created_parents(path.parent)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
            except OSError as exc:  # name the file the user asked for, not a temporary one
                raise OSError(exc.errno, f"Could not write {str(path)!r}: {exc.strerror}") from exc
            os.close(fd)
            staged.append((Path(tmp), path))
            write(Path(tmp))
            os.chmod(tmp, _new_file_mode(path))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        for folder in reversed(made):
            folder.rmdir()
        raise
    for tmp, path in staged:
        os.replace(tmp, path)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place.

    If ``write`` fails, ``path`` keeps whatever it held before (see :func:`write_files`).
    """
    write_files([(path, write)])
