"""Writing files all or nothing: a failed write leaves the user's files as they were."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["atomic_write", "check_output_file", "check_writable", "inside", "write_files"]


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


def inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (links and ``..`` resolved)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_writable(path: str | Path, what: str) -> None:
    """Refuse, before any work, a path whose folder cannot be made or written.

    The nearest existing ancestor must be a directory in which a file can be
    created: this is probed with an anonymous temporary file, which leaves
    nothing behind whatever happens.

    Raises:
        ConfigError: an ancestor is a file, or the folder is not writable.
    """
    from archguide.exceptions import ConfigError

    path = Path(path)
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"Could not write {what} {str(path)!r}: {str(folder)!r} is a file, not a folder.")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(
            f"Could not write {what} {str(path)!r}: no file can be made in {str(folder)!r} ({exc.strerror or exc})."
        ) from None


def check_output_file(
    path: str | Path, what: str, *, inputs: Sequence[tuple[str, str | Path]] = (), protected: Sequence[Path] = ()
) -> None:
    """Refuse, before any work, an output file that would destroy something or cannot be written.

    Args:
        path: The file the command will write.
        what: How the user named it (``"--out"``), for messages.
        inputs: ``(description, path)`` of every file the command reads: the output may be none of them.
        protected: Folders (a run directory the command reads) the output may not be written into.

    Raises:
        ConfigError: the path is an existing directory, one of the inputs, inside a protected
            folder, or not writable (see :func:`check_writable`).
    """
    from archguide.exceptions import ConfigError

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a directory; expected a file name.")
    for description, source in inputs:
        if source is not None and _same_file(path, Path(source)):
            raise ConfigError(
                f"{what} {str(path)!r} is the {description}: writing there would overwrite it. Choose another path."
            )
    for folder in protected:
        if inside(path, folder):
            raise ConfigError(
                f"{what} {str(path)!r} is inside the run directory {str(folder)!r}, which this command reads: "
                "writing there could break the run. Choose a path outside it."
            )
    check_writable(path, what)


def write_files(outputs: Sequence[tuple[str | Path, Callable[[Path], None]]]) -> None:
    """Write several files all or nothing.

    Each ``write(tmp)`` writes a temporary file beside its target; only when
    every one has succeeded are they all moved into place. If any fails, no
    target is touched, and the temporaries and any folders made for them are
    removed. The move itself is all or nothing too: each file it replaces is
    first renamed aside, and if a later move fails every target gets back what
    it held before. A replaced file keeps its mode; a new one gets the umask's.
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
        _discard(staged, made)
        raise
    _swap(staged, made)


def _discard(staged: list[tuple[Path, Path]], made: list[Path]) -> None:
    """Remove the staged temporaries and the folders made for them (after a failure: its error is the one raised)."""
    for tmp, _ in staged:
        tmp.unlink(missing_ok=True)
    for folder in reversed(made):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _swap(staged: list[tuple[Path, Path]], made: list[Path]) -> None:
    """Move every staged file into place, or (if one move fails) none: the old files are put back."""
    done: list[tuple[Path, Path | None]] = []  # (target, its old content aside, or None if it is new)
    try:
        for tmp, path in staged:
            aside = None
            if path.exists():
                fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old")
                os.close(fd)
                aside = Path(name)
                os.replace(path, aside)
            done.append((path, aside))
            os.replace(tmp, path)
    except BaseException:
        for path, aside in reversed(done):
            if aside is not None:
                os.replace(aside, path)
            else:
                path.unlink(missing_ok=True)
        _discard(staged, made)
        raise
    for _, aside in done:
        if aside is not None:
            aside.unlink(missing_ok=True)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place.

    If ``write`` fails, ``path`` keeps whatever it held before (see :func:`write_files`).
    """
    write_files([(path, write)])
