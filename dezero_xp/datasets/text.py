"""Text-file datasets: tiny-shakespeare (``Shakespear``, DeZero's spelling) and ImageNet's labels.

``Shakespear`` is a character sequence: ``data[i]`` is the id of character ``i`` and
``label[i]`` that of character ``i + 1``; ids are given in the order characters first appear
(``char_to_id`` / ``id_to_char``), as DeZero's. ``ImageNet`` has no images (DeZero's has none
either); :meth:`ImageNet.labels` reads the class-index-to-name list.

Both read a local file first (``root=``: the file or its folder; else the folders listed in
:mod:`dezero_xp.datasets`) and raise :class:`DatasetNotFoundError` saying where to put it.
``Shakespear`` downloads only with ``download=True``, like the other datasets; ``labels()``
fetches its small list by default, as pretrained weights are, since the book's step 58 calls it
so.

May import: numpy, dezero_xp._download and dezero_xp.datasets.base.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dezero_xp._download import DownloadError
from dezero_xp.datasets.base import Dataset, _Files

__all__ = ["ImageNet", "Shakespear"]


def _find_text(
    files: _Files, root: str | os.PathLike[str] | None, names: Sequence[str]
) -> Path | None:
    """The path of the first of ``names`` found (``root`` may name the file itself)."""
    if root is not None and Path(root).is_file():
        return Path(root)
    found = files.find(names, variants=("",))
    for name in names:
        if name in found:
            return found[name]
    return None


def _files_for(
    title: str, subdir: str, env_var: str, urls: Sequence[str], root: str | os.PathLike[str] | None
) -> _Files:
    folder = None if root is None else Path(root)
    return _Files(title, subdir, env_var, urls, folder, legacy_dirs=("~/.dezero",))


class Shakespear(Dataset):
    """tiny-shakespeare (Karpathy's char-rnn ``input.txt``) as a sequence of character ids.

    ``root`` is the text file or a folder holding ``input.txt`` (or DeZero's cached name
    ``shakespear.txt``). ``train`` is ignored: there is one text, as in DeZero.
    """

    title = "tiny-shakespeare"
    subdir = "shakespeare"
    env_var = "DEZERO_XP_SHAKESPEARE_DIR"
    urls = ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/",)
    file_names = ("input.txt", "shakespear.txt")

    def __init__(
        self,
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
        root: str | os.PathLike[str] | None = None,
        download: bool = False,
    ) -> None:
        self.root = root
        self.download = download
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        files = _files_for(self.title, self.subdir, self.env_var, self.urls, self.root)
        path = _find_text(files, self.root, self.file_names)
        source = f"it can be had as {self.urls[0]}{self.file_names[0]}"
        if path is None and self.download:
            try:
                path = files.fetch(self.file_names[0])
            except DownloadError as exc:
                raise files.missing_error([self.file_names[0]], source, exc) from None
        if path is None:
            raise files.missing_error([self.file_names[0]], source)
        text = path.read_text(encoding="utf-8")
        if len(text) < 2:
            raise ValueError(f"{path}: the text needs at least 2 characters, got {len(text)}")
        char_to_id: dict[str, int] = {}
        for char in text:
            if char not in char_to_id:
                char_to_id[char] = len(char_to_id)
        indices = np.array([char_to_id[c] for c in text], dtype=np.int64)
        self.data = indices[:-1]
        self.label = indices[1:]
        self.char_to_id = char_to_id
        self.id_to_char = {i: c for c, i in char_to_id.items()}


class ImageNet(Dataset):
    """ImageNet's 1000 class names; the images themselves are not provided (nor in DeZero)."""

    title = "ImageNet labels"
    subdir = "imagenet"
    env_var = "DEZERO_XP_IMAGENET_DIR"
    urls = (
        "https://gist.githubusercontent.com/yrevar/942d3a0ac09ec9e5eb3a/raw/"
        "238f720ff059c1f82f368259d1ca4ffa5dd8f9f5/",
    )
    file_name = "imagenet1000_clsidx_to_labels.txt"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            "ImageNet: the images are not provided (DeZero's ImageNet has none either); "
            "ImageNet.labels() gives the 1000 class names"
        )

    @classmethod
    def labels(
        cls, root: str | os.PathLike[str] | None = None, download: bool = True
    ) -> dict[int, str]:
        """``{class index: name}`` from the label list (a Python dict literal, read without
        running it). ``root`` is the file or its folder; otherwise it is looked for in the
        usual folders and, with ``download``, fetched once into the cache."""
        files = _files_for(cls.title, cls.subdir, cls.env_var, cls.urls, root)
        path = _find_text(files, root, (cls.file_name,))
        source = f"it can be had from {cls.urls[0]}{cls.file_name}"
        if path is None and download:
            try:
                path = files.fetch(cls.file_name)
            except DownloadError as exc:
                raise files.missing_error([cls.file_name], source, exc) from None
        if path is None:
            raise files.missing_error([cls.file_name], source)
        try:
            labels = ast.literal_eval(path.read_text(encoding="utf-8"))
        except (ValueError, SyntaxError) as exc:
            raise ValueError(
                f"{path}: not a label list ({exc}); expected {{0: 'name', ...}}"
            ) from None
        if not isinstance(labels, dict) or not all(
            isinstance(k, int) and isinstance(v, str) for k, v in labels.items()
        ):
            raise ValueError(f"{path}: not a label list; expected {{0: 'name', ...}}")
        return labels
