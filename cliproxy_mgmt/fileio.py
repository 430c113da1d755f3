"""Replacing a file so that readers see the old or the new contents, never half of either."""

from __future__ import annotations

import os
import tempfile
from typing import Callable


def replace_file(target: str, data: bytes, *, mode: int, prefix: str, suffix: str,
                 rename_refused: Callable[[OSError], bool] = lambda exc: False,
                 fallback: Callable[[str, bytes], None] | None = None) -> None:
    """Write `data` to a temp file beside `target` (fsync, `mode`), rename it over `target`, fsync the folder.

    `target` is the directory entry replaced (resolve symlinks first if you mean their
    target). When the rename fails with an error `rename_refused(exc)` accepts, `fallback(target,
    data)` writes instead. A failure leaves `target` as it was and removes the temp file.
    """
    folder = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp, target)
        except OSError as exc:
            if fallback is None or not rename_refused(exc):
                raise
            fallback(target, data)
            os.unlink(tmp)
            return
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
