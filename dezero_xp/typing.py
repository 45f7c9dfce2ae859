"""Type aliases of the public API, for annotations and for type checkers (mypy, pyright).

The names, each usable in user code (``from dezero_xp.typing import VariableLike``):

- :class:`SupportsArray`: what dezero_xp accepts as an array, structurally: anything with
  ``shape``, ``ndim``, ``dtype``, arithmetic, comparisons and indexing. NumPy arrays, CuPy arrays,
  array-api-strict arrays and torch tensors all satisfy it (those three libraries are optional,
  so they are never imported here).
- ``Array``: an array dezero_xp hands back (``Variable.data``, ``to_dlpack``...). ``Any``: its
  library is the one the data came from, which the types cannot know.
- ``ArrayLike``: an array argument (``numpy.ndarray`` or any :class:`SupportsArray`).
- ``Scalar``: a Python or NumPy scalar; it meets an array in the array's dtype.
- ``VariableLike``: a :class:`~dezero_xp.Variable` or an array: what every op accepts.
- ``Shape`` (a tuple of ints, as ``Variable.shape`` returns) and ``ShapeLike`` (an int or a
  sequence of ints, as ``reshape`` and the creation functions accept).
- ``Axis``: an axis argument (an int, a tuple or list of ints, or None for all axes).
- ``DeviceLike``: a device spec: ``"cpu"``, ``"cuda:1"``, ``"torch"``, ``"auto"``, an int (a CUDA
  device), a :class:`~dezero_xp.Device`, a :class:`~dezero_xp.Backend`, or a library's own device
  object (``torch.device``, ``cupy.cuda.Device``; ``Any`` here, their libraries being optional).
  ``None`` (the default device) is spelled out where it is accepted.
- ``DTypeLike``: a dtype spec: a name (``"float32"``) or a library's dtype object.
- :class:`DatasetLike`: what a DataLoader iterates: ``len()`` and ``dataset[i]`` giving
  ``(x, t)`` (a :class:`~dezero_xp.datasets.Dataset` or any sequence of pairs).

Runtime cost is nil: this module imports only ``typing`` and NumPy (which the backend layer has
loaded already); the classes it names come in for type checkers only.

May import: numpy, and (for type checkers only, under ``TYPE_CHECKING``) dezero_xp.backend and
dezero_xp.core.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, Union

import numpy as np

if TYPE_CHECKING:
    from dezero_xp.backend import Backend, Device
    from dezero_xp.core import Variable

__all__ = [
    "Array",
    "ArrayLike",
    "Axis",
    "DTypeLike",
    "DatasetLike",
    "DeviceLike",
    "Scalar",
    "Shape",
    "ShapeLike",
    "SupportsArray",
    "VariableLike",
]


class SupportsArray(Protocol):
    """An array of any supported library, as dezero_xp sees it: a shape, a rank, a dtype, the
    arithmetic and comparison operators and indexing (what the Python Array API standard asks of
    an array)."""

    @property
    def shape(self) -> Any: ...

    @property
    def ndim(self) -> int: ...

    @property
    def dtype(self) -> Any: ...

    def __add__(self, other: Any, /) -> Any: ...
    def __radd__(self, other: Any, /) -> Any: ...
    def __sub__(self, other: Any, /) -> Any: ...
    def __rsub__(self, other: Any, /) -> Any: ...
    def __mul__(self, other: Any, /) -> Any: ...
    def __rmul__(self, other: Any, /) -> Any: ...
    def __truediv__(self, other: Any, /) -> Any: ...
    def __rtruediv__(self, other: Any, /) -> Any: ...
    def __pow__(self, other: Any, /) -> Any: ...
    def __neg__(self) -> Any: ...
    def __lt__(self, other: Any, /) -> Any: ...
    def __le__(self, other: Any, /) -> Any: ...
    def __gt__(self, other: Any, /) -> Any: ...
    def __ge__(self, other: Any, /) -> Any: ...
    def __getitem__(self, key: Any, /) -> Any: ...


class DatasetLike(Protocol):
    """A dataset as a DataLoader sees it: a length and ``(x, t)`` examples by index."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int, /) -> Any: ...


#: An array dezero_xp returns; its library is the input's (NumPy, CuPy, torch, ...).
Array: TypeAlias = Any
#: An array argument of any supported library.
ArrayLike: TypeAlias = np.ndarray | SupportsArray
#: A Python or NumPy scalar.
Scalar: TypeAlias = int | float | complex | np.generic
#: A Variable or an array, as every op accepts.
VariableLike: TypeAlias = Union["Variable", ArrayLike]
#: A shape as dezero_xp returns it.
Shape: TypeAlias = tuple[int, ...]
#: A shape argument (an int or a sequence of ints).
ShapeLike: TypeAlias = int | Sequence[int]
#: An axis argument (an int, a tuple or list of ints, or None for every axis).
Axis: TypeAlias = int | tuple[int, ...] | list[int] | None
#: A device spec (a library's own device object is ``Any``).
DeviceLike: TypeAlias = Union[str, int, "Device", "Backend", Any]
#: A dtype spec (a standard name or a library's dtype object).
DTypeLike: TypeAlias = str | Any
