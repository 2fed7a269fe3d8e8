"""The one crash-safe file writer (tollgate.contracts.files): all or nothing, nothing left behind."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest

from tollgate.contracts.files import write_bytes_atomic, write_json_atomic, write_text_atomic


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_json_replaces_the_file_whole(tmp_path) -> None:
    path = tmp_path / "summary.json"
    path.write_text('{"old": true}')
    assert write_json_atomic(path, {"a": 1, "b": [1.5, None]}) == path
    assert json.loads(path.read_text()) == {"a": 1, "b": [1.5, None]}
    write_json_atomic(path, {"c": 2}, indent=None, separators=(",", ":"), newline=True)
    assert path.read_text() == '{"c":2}\n'
    write_json_atomic(path, {"n": np.int64(3)}, default=lambda v: v.item())
    assert json.loads(path.read_text()) == {"n": 3}
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("obj", "kwargs", "error"),
    [({"x": object()}, {}, TypeError), ({"x": math.nan}, {"allow_nan": False}, ValueError)],
)
def test_a_value_that_cannot_be_written_leaves_the_old_file(tmp_path, obj, kwargs, error) -> None:
    path = tmp_path / "gate.json"
    path.write_text('{"verdict": "pass"}')
    with pytest.raises(error):
        write_json_atomic(path, obj, **kwargs)
    assert json.loads(path.read_text()) == {"verdict": "pass"}
    assert _leftovers(tmp_path) == []


def test_a_failed_rename_removes_the_temporary_file(tmp_path) -> None:
    target = tmp_path / "taken"
    target.mkdir()  # a directory where the file should go: os.replace fails for real
    with pytest.raises(OSError):
        write_text_atomic(target, "text")
    assert target.is_dir() and _leftovers(tmp_path) == []


def test_a_missing_folder_is_an_error_naming_it(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        write_bytes_atomic(tmp_path / "nowhere" / "x.bin", b"x")


def test_permissions_follow_the_umask_like_a_plain_write(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "a.bin", b"\x00\x01")
        (tmp_path / "b.bin").write_bytes(b"")
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    mode = stat.S_IMODE((tmp_path / "a.bin").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o644
