"""A test session's temporary folder of its own, outside pytest's shared ``pytest-of-<user>``.

Run as root, the embedded server runs as an unprivileged account that must traverse every
folder above its data. Each new pytest session on the machine takes the group and other bits
off the shared ``/tmp/pytest-of-root`` (pytest keeps it private), which cuts a running server
of another session off from its files: it panics ("could not open pg_control: Permission
denied"). Two sessions at once, a developer's and CI's or two helpers', then break each other.
A session that names its own base folder (``--basetemp``) never touches the shared one; this
names one per session, and xdist hands each worker a folder inside it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

_OWN = "_mca_own_basetemp"


def use_own_basetemp(config: pytest.Config) -> None:
    """From `pytest_configure`: a fresh base folder for this session unless one was given."""
    if config.option.basetemp or hasattr(config, "workerinput"):
        return  # the user's choice, or an xdist worker inside its controller's folder
    folder = Path(tempfile.mkdtemp(prefix="mca-pytest-"))
    config.option.basetemp = str(folder)
    setattr(config, _OWN, folder)


def remove_own_basetemp(config: pytest.Config) -> None:
    """From `pytest_unconfigure`: the folder `use_own_basetemp` made goes with the session."""
    folder = getattr(config, _OWN, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
