"""Host-side data transforms (DeZero's ``transforms``): small callables applied per example.

They work on NumPy arrays, images laid out ``(C, H, W)`` (or ``(H, W)``) as DeZero's; the
image ones also accept PIL images and then call PIL (imported only when such an image comes).
Sizes follow PIL and DeZero: an int or ``(width, height)``.

``Resize`` on arrays is a plain nearest or bilinear interpolation (half-pixel centres, no
anti-aliasing), so shrinking an array is not pixel-identical to PIL's filtered resize.

May import: numpy, dezero_xp.backend (the seeded host RNG of RandomHorizontalFlip) and, lazily,
PIL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from dezero_xp.backend import host_rng

__all__ = [
    "AsType",
    "CenterCrop",
    "Compose",
    "Convert",
    "Flatten",
    "Normalize",
    "RandomHorizontalFlip",
    "Resize",
    "ToArray",
    "ToFloat",
    "ToInt",
    "ToPIL",
]


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    if len(size) != 2:
        raise ValueError(f"expected an int or a (width, height) pair, got {size!r}")
    return int(size[0]), int(size[1])


def _is_pil(img: Any) -> bool:
    return type(img).__module__.split(".")[0] == "PIL"


def _check_image(name: str, array: Any) -> None:
    if not isinstance(array, np.ndarray) or array.ndim not in (2, 3):
        shape = getattr(array, "shape", None)
        raise TypeError(
            f"{name}: expected a NumPy image of shape (C, H, W) or (H, W) or a PIL image, got "
            f"{type(array).__name__}" + (f" of shape {shape}" if shape is not None else "")
        )


class Compose:
    """Apply several transforms in order."""

    def __init__(self, transforms: Iterable[Callable[[Any], Any]] | None = None) -> None:
        self.transforms = list(transforms) if transforms is not None else []

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


# =============================================================================
# Image transforms
# =============================================================================
class Convert:
    """Change the colour mode: ``"RGB"``, ``"BGR"`` (RGB with the channels reversed) or ``"L"``.

    Arrays are ``(C, H, W)``; ``"L"`` uses ITU-R 601-2 luma, as PIL does, and keeps the dtype.
    """

    def __init__(self, mode: str = "RGB") -> None:
        if not isinstance(mode, str):
            raise TypeError(f"Convert: mode must be a string such as 'RGB', got {mode!r}")
        self.mode = mode

    def __call__(self, img: Any) -> Any:
        if _is_pil(img):
            return self._convert_pil(img)
        _check_image("Convert", img)
        channels = img[None] if img.ndim == 2 else img
        c = channels.shape[0]
        if self.mode in ("RGB", "BGR"):
            if c == 1:
                rgb = np.concatenate([channels] * 3, axis=0)
            elif c in (3, 4):
                rgb = channels[:3]
            else:
                raise ValueError(f"Convert: cannot make RGB from {c} channels")
            return rgb[::-1].copy() if self.mode == "BGR" else rgb.copy()
        if self.mode == "L":
            if c == 1:
                return channels.copy()
            if c not in (3, 4):
                raise ValueError(f"Convert: cannot make L from {c} channels")
            r, g, b = (channels[i].astype(np.float64) for i in range(3))
            luma = (r * 299 + g * 587 + b * 114) / 1000
            if np.issubdtype(img.dtype, np.integer):
                luma = np.rint(luma)
            return luma[None].astype(img.dtype)
        raise ValueError(f"Convert: mode {self.mode!r} is supported for PIL images only")

    def _convert_pil(self, img: Any) -> Any:
        if self.mode != "BGR":
            return img.convert(self.mode)
        from PIL import Image  # noqa: PLC0415 - optional, only for PIL input

        r, g, b = img.convert("RGB").split()
        return Image.merge("RGB", (b, g, r))


class Resize:
    """Resize to ``size`` = int or ``(width, height)``; ``mode`` "bilinear" or "nearest"."""

    def __init__(self, size: int | Sequence[int], mode: str | int = "bilinear") -> None:
        self.size = _pair(size)
        if isinstance(mode, str) and mode not in ("bilinear", "nearest"):
            raise ValueError(f"Resize: mode must be 'bilinear' or 'nearest', got {mode!r}")
        self.mode = mode

    def __call__(self, img: Any) -> Any:
        if _is_pil(img):
            from PIL import Image  # noqa: PLC0415 - optional, only for PIL input

            resample = self.mode
            if isinstance(resample, str):
                resample = Image.BILINEAR if resample == "bilinear" else Image.NEAREST
            return img.resize(self.size, resample)
        _check_image("Resize", img)
        if not isinstance(self.mode, str):
            raise ValueError("Resize: PIL resample codes need a PIL image; use 'bilinear'")
        out_w, out_h = self.size
        h, w = img.shape[-2:]
        if self.mode == "nearest":
            rows = np.minimum((np.arange(out_h) + 0.5) * h / out_h, h - 1).astype(np.intp)
            cols = np.minimum((np.arange(out_w) + 0.5) * w / out_w, w - 1).astype(np.intp)
            return img[..., rows[:, None], cols[None, :]]
        y0, y1, wy = _bilinear_weights(h, out_h)
        x0, x1, wx = _bilinear_weights(w, out_w)
        src = img.astype(np.float64)
        top = src[..., y0, :] * (1 - wy)[:, None] + src[..., y1, :] * wy[:, None]
        out = top[..., x0] * (1 - wx) + top[..., x1] * wx
        if np.issubdtype(img.dtype, np.integer):
            info = np.iinfo(img.dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        return out.astype(img.dtype)


def _bilinear_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of bilinear sampling with half-pixel centres."""
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, pos - lo


class CenterCrop:
    """Cut the central ``size`` = int or ``(width, height)`` region (DeZero's rounding)."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair(size)

    def __call__(self, img: Any) -> Any:
        if _is_pil(img):
            w, h = img.size
        else:
            _check_image("CenterCrop", img)
            h, w = img.shape[-2:]
        out_w, out_h = self.size
        if out_w > w or out_h > h:
            raise ValueError(f"CenterCrop: crop {out_w}x{out_h} is larger than the image {w}x{h}")
        left = (w - out_w) // 2
        top = (h - out_h) // 2
        if _is_pil(img):
            return img.crop((left, top, left + out_w, top + out_h))
        return img[..., top : top + out_h, left : left + out_w].copy()


class ToArray:
    """A PIL image as a ``(C, H, W)`` array of ``dtype``; NumPy arrays pass unchanged."""

    def __init__(self, dtype: Any = np.float32) -> None:
        self.dtype = dtype

    def __call__(self, img: Any) -> Any:
        if isinstance(img, np.ndarray):
            return img
        if _is_pil(img):
            array = np.asarray(img)
            array = array[None] if array.ndim == 2 else np.transpose(array, (2, 0, 1))
            return array.astype(self.dtype)
        raise TypeError(f"ToArray: expected a PIL image or a NumPy array, got {type(img).__name__}")


class ToPIL:
    """A ``(C, H, W)`` (or ``(H, W)``) uint8 array as a PIL image (needs Pillow)."""

    def __call__(self, array: np.ndarray) -> Any:
        from PIL import Image  # noqa: PLC0415 - optional dependency

        _check_image("ToPIL", array)
        if array.ndim == 3:
            array = array[0] if array.shape[0] == 1 else np.transpose(array, (1, 2, 0))
        return Image.fromarray(np.ascontiguousarray(array))


class RandomHorizontalFlip:
    """Mirror the image left-right with probability ``p`` (reproducible under ``dz.seed``)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p
        self._rng: Any = None  # made at the first call, so a later dz.seed() still applies

    def __call__(self, img: Any) -> Any:
        if self._rng is None:
            self._rng = host_rng("transforms.RandomHorizontalFlip")
        if self._rng.random() >= self.p:
            return img
        if _is_pil(img):
            from PIL import Image  # noqa: PLC0415 - optional, only for PIL input

            return img.transpose(Image.FLIP_LEFT_RIGHT)
        _check_image("RandomHorizontalFlip", img)
        return img[..., ::-1].copy()


# =============================================================================
# Array transforms
# =============================================================================
class Normalize:
    """``(array - mean) / std``; sequences are per channel (axis 0), as DeZero's."""

    def __init__(self, mean: float | Sequence[float] = 0, std: float | Sequence[float] = 1) -> None:
        self.mean = mean
        self.std = std

    def _per_channel(self, value: Any, array: np.ndarray) -> Any:
        if np.isscalar(value):
            return value
        shape = [1] * array.ndim
        if len(value) != 1:  # one value broadcasts (DeZero's reshape failed on it)
            shape[0] = len(value)
        return np.array(value, dtype=array.dtype).reshape(*shape)

    def __call__(self, array: np.ndarray) -> np.ndarray:
        return (array - self._per_channel(self.mean, array)) / self._per_channel(self.std, array)


class Flatten:
    """The array as 1-D (a copy)."""

    def __call__(self, array: Any) -> np.ndarray:
        return np.ravel(array).copy()


class AsType:
    """The array converted to ``dtype`` (float32 unless given)."""

    def __init__(self, dtype: Any = np.float32) -> None:
        self.dtype = dtype

    def __call__(self, array: Any) -> np.ndarray:
        return np.asarray(array).astype(self.dtype)


ToFloat = AsType


class ToInt(AsType):
    """The array converted to an integer dtype (int64 unless given)."""

    def __init__(self, dtype: Any = np.int64) -> None:
        self.dtype = dtype
