"""tiny-shakespeare (``Shakespear``) and ImageNet's label list, on small files the tests write."""

from __future__ import annotations

import numpy as np
import pytest

import dezero_xp.datasets as D
from dezero_xp import SeqDataLoader

UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: nothing listens there


@pytest.fixture(autouse=True)
def _no_user_folders(monkeypatch, tmp_path):
    """Search only what each test names: no data folders or caches of the machine."""
    for var in ("DEZERO_XP_DATA_DIR", "DEZERO_XP_SHAKESPEARE_DIR", "DEZERO_XP_IMAGENET_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DEZERO_XP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(D.Shakespear, "urls", (UNREACHABLE,))
    monkeypatch.setattr(D.ImageNet, "urls", (UNREACHABLE,))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # DeZero's ~/.dezero cache


TEXT = "First Citizen:\nBefore we proceed"


def test_shakespear_from_a_file_and_a_folder(tmp_path):
    path = tmp_path / "input.txt"
    path.write_text(TEXT, encoding="utf-8")
    for root in (path, tmp_path):
        ds = D.Shakespear(root=root)
        assert len(ds) == len(TEXT) - 1
        # ids in the order characters first appear, as DeZero's
        assert list(ds.char_to_id)[:5] == ["F", "i", "r", "s", "t"]
        assert ds.char_to_id["F"] == 0 and ds.id_to_char[0] == "F"
        decoded = "".join(ds.id_to_char[int(i)] for i in ds.data)
        assert decoded == TEXT[:-1]
        x, t = ds[3]
        assert (ds.id_to_char[int(x)], ds.id_to_char[int(t)]) == ("s", "t")
        assert ds.data.dtype == np.int64
        np.testing.assert_array_equal(ds.label[:-1], ds.data[1:])


def test_shakespear_env_folder_and_dezero_file_name(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "shakespear.txt").write_text("abcab", encoding="utf-8")
    monkeypatch.setenv("DEZERO_XP_SHAKESPEARE_DIR", str(folder))
    ds = D.Shakespear()
    assert ds.data.tolist() == [0, 1, 2, 0] and ds.label.tolist() == [1, 2, 0, 1]
    x, t = next(SeqDataLoader(ds, batch_size=2))
    assert x.tolist() == [0, 2] and t.tolist() == [1, 0]


def test_shakespear_offline_errors(tmp_path):
    with pytest.raises(D.DatasetNotFoundError, match=r"tiny-shakespeare: missing input\.txt") as e:
        D.Shakespear(root=tmp_path)
    assert "download=True" in str(e.value) and str(tmp_path) in str(e.value)
    with pytest.raises(D.DatasetNotFoundError, match="The download failed"):
        D.Shakespear(root=tmp_path, download=True)
    (tmp_path / "input.txt").write_text("a", encoding="utf-8")
    with pytest.raises(ValueError, match="at least 2 characters"):
        D.Shakespear(root=tmp_path)


def test_imagenet_labels_from_a_local_file(tmp_path):
    path = tmp_path / "imagenet1000_clsidx_to_labels.txt"
    path.write_text("{0: 'tench, Tinca tinca',\n 1: 'goldfish, Carassius auratus'}\n")
    for root in (path, tmp_path):
        labels = D.ImageNet.labels(root=root)
        assert labels == {0: "tench, Tinca tinca", 1: "goldfish, Carassius auratus"}


def test_imagenet_labels_are_read_not_run(tmp_path):
    path = tmp_path / "imagenet1000_clsidx_to_labels.txt"
    path.write_text("__import__('os').getcwd()")
    with pytest.raises(ValueError, match="not a label list"):
        D.ImageNet.labels(root=path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a label list"):
        D.ImageNet.labels(root=path)


def test_imagenet_offline_and_no_images(tmp_path):
    with pytest.raises(D.DatasetNotFoundError, match="The download failed") as e:
        D.ImageNet.labels()
    assert "imagenet1000_clsidx_to_labels.txt" in str(e.value)
    with pytest.raises(D.DatasetNotFoundError, match="download=True"):
        D.ImageNet.labels(root=tmp_path, download=False)
    with pytest.raises(NotImplementedError, match=r"ImageNet\.labels\(\)"):
        D.ImageNet()
