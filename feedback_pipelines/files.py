"""Writing output files so that a reader or a crash never sees half of them.

One file: a temporary sibling, then `os.replace`. A folder of files (an export, a review queue):
a staging sibling filled completely, then swapped in by two renames, the previous version kept
aside until the new one is in place. Files get the usual 0644 (less the umask), not the 0600 of
`mkstemp`, so exports, reports and queues are readable alike.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a whole file via a temporary sibling and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def staging_folder(folder: Path) -> Path:
    """An empty sibling folder to fill before `swap_folder` puts it in `folder`'s place."""
    staging = Path(folder).with_name(f".{Path(folder).name}.tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def swap_folder(staging: Path, folder: Path) -> None:
    """Put a filled staging folder in place of `folder`, never deleting the old one first.

    The old folder is renamed aside, the new one renamed in, and only then the old one removed:
    a crash at any point leaves either version whole on disk (`.<name>.old` if between renames).
    Staging and old folders are hidden (dot names), so globs such as `dt=*` never see them.
    """
    folder = Path(folder)
    old = folder.with_name(f".{folder.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if folder.exists():
        folder.rename(old)
    else:
        folder.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(folder)
    if old.exists():
        shutil.rmtree(old)
