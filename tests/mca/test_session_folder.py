"""The session's temporary folder is its own (mca/testing/tmp.py), so that another pytest
session starting on the machine cannot cut this session's embedded server off from its data."""

from __future__ import annotations

from pathlib import Path

from mca.embedded import EmbeddedPostgres


def test_the_session_folder_is_outside_the_shared_pytest_folder(
    tmp_path: Path, pg_server: EmbeddedPostgres
) -> None:
    for folder in (tmp_path, pg_server.data_dir):
        assert "pytest-of-" not in str(folder)
