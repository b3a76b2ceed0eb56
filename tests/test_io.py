import json
import os

import pytest

from lab.splice import replace_between_markers
from pansim.files import atomic_path, write_json_atomic, write_text_atomic


def test_text_round_trip_creates_parents(tmp_path):
    path = tmp_path / "a" / "b" / "note.txt"
    assert write_text_atomic(path, "hello\nworld") == path
    assert path.read_text() == "hello\nworld"
    assert list(path.parent.iterdir()) == [path]


def test_json_round_trip_keeps_bytes(tmp_path):
    payload = {"b": [1, 2.5, None], "a": "x"}
    path = write_json_atomic(tmp_path / "p.json", payload, indent=1, sort_keys=True)
    assert path.read_text() == json.dumps(payload, indent=1, sort_keys=True)
    assert json.loads(path.read_text()) == payload
    write_json_atomic(path, {1}, default=sorted)
    assert path.read_text() == "[1]"


def test_failed_serialisation_keeps_the_old_file(tmp_path):
    path = tmp_path / "p.json"
    write_json_atomic(path, {"old": True})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"new": object()})
    assert json.loads(path.read_text()) == {"old": True}
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_path_removes_its_temp_on_failure(tmp_path, error):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(error), atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".tmp") and tmp != path
        tmp.write_bytes(b"half")
        raise error
    assert path.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [path]


def test_atomic_path_replaces_with_plain_permissions(tmp_path):
    path = tmp_path / "new" / "f.bin"
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"new")
        assert not path.exists()
    assert path.read_bytes() == b"new"
    assert list(path.parent.iterdir()) == [path]
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_bytes_are_written_in_binary_mode(tmp_path):
    path = write_text_atomic(tmp_path / "b.bin", b"\x00\xff\n")
    assert path.read_bytes() == b"\x00\xff\n"


def test_model_files_get_the_usual_permissions(tmp_path, tiny_model_factory):
    """safetensors' own save_file creates 0600 files; pansim's model files follow the umask."""
    from pansim.model_io import load_model, save_model

    path = save_model(tiny_model_factory(), tmp_path / "m.safetensors")
    assert load_model(path).pansim_config == tiny_model_factory().pansim_config
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_replace_between_markers_keeps_the_rest_and_skips_unmarked_files(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("intro\n<!-- s (by x) -->\nold\n<!-- e -->\noutro\n")
    assert replace_between_markers(path, "<!-- s", "<!-- e -->", "<!-- s -->\nnew\n<!-- e -->")
    assert path.read_text() == "intro\n<!-- s -->\nnew\n<!-- e -->\noutro\n"
    path.write_text("no markers\n")
    assert not replace_between_markers(path, "<!-- s", "<!-- e -->", "x")
    assert path.read_text() == "no markers\n"
    assert not replace_between_markers(tmp_path / "missing.md", "<!-- s", "<!-- e -->", "x")
    assert not (tmp_path / "missing.md").exists()
