"""The spool directory of imports: a directory someone else owns or may write is refused
(they could swap a spooled upload before it is read); a private one is used."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tgstats.jobs.uploads import check_private_dir


def test_a_private_directory_is_accepted(tmp_path: Path) -> None:
    private = tmp_path / "spool"
    private.mkdir(mode=0o700)
    check_private_dir(private)


def test_a_directory_others_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(PermissionError, match=r"IMPORT_DIR .* not be writable by others"):
        check_private_dir(shared)


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a directory to another user")
def test_a_directory_another_user_owns_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(PermissionError, match="must belong to this user"):
        check_private_dir(theirs)
