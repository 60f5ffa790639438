"""`mca.reloading`: one hot-reload for both YAML files."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mca.reloading import ReloadingFile


class Bad(ValueError):
    pass


def parse(path: Path) -> int:
    text = path.read_text().strip()
    if not text.isdigit():
        raise Bad(f"not a number: {text!r}")
    return int(text)


def test_a_change_is_read_and_a_bad_edit_keeps_the_last_good_value(tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    path.write_text("1")
    seen: list[tuple[int, int]] = []
    file = ReloadingFile(path, parse, rejects=(Bad,), on_reload=lambda a, b: seen.append((a, b)))
    assert file.current() == 1 and file.last_error is None
    path.write_text("22")
    assert file.current() == 22 and seen == [(1, 22)]
    path.write_text("oops")
    assert file.current() == 22
    assert isinstance(file.last_error, Bad) and "oops" in str(file.last_error)
    path.write_text("333")
    assert file.current() == 333 and file.last_error is None


def test_a_same_mtime_edit_of_another_size_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    path.write_text("1")
    stat = path.stat()
    file = ReloadingFile(path, parse, rejects=(Bad,))
    path.write_text("12")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file.current() == 12


def test_a_bad_file_at_start_fails_and_other_errors_propagate(tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    path.write_text("x")
    with pytest.raises(Bad):
        ReloadingFile(path, parse, rejects=(Bad,))
    path.write_text("1")
    file = ReloadingFile(path, parse, rejects=(KeyError,))
    path.write_text("xy")
    with pytest.raises(Bad):
        file.current()


def test_concurrent_readers_load_a_change_once(tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    path.write_text("1")
    loads: list[int] = []

    def counted(p: Path) -> int:
        loads.append(1)
        return parse(p)

    file = ReloadingFile(path, counted, rejects=(Bad,))
    path.write_text("42")
    barrier = threading.Barrier(8)
    results: list[int] = []

    def read() -> None:
        barrier.wait(timeout=5)
        results.append(file.current())

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert results == [42] * 8
    assert len(loads) == 2
