"""A small real disk for tests of what a full disk does (a tmpfs; mounting needs root)."""

from __future__ import annotations

import subprocess
from contextlib import contextmanager

import pytest


@contextmanager
def small_disk(folder, size: str = "64k"):
    """Mount a tmpfs of `size` on `folder` (made if missing) for the block; skip without root."""
    folder.mkdir(exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                      capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def fill(folder) -> None:
    """Take the rest of the disk `folder` is on (a file `filler` in it)."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while f.write(b"x" * 4096):
                pass
        except OSError:
            pass
