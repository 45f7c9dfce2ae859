"""dezero_xp: define-by-run automatic differentiation on any array library.

The public surface: Variable, Parameter, Function, the config context managers, the device
helpers and ``seed``. ``import dezero_xp as dz`` replaces ``import dezero``. This file only
assembles: it also installs Variable's operators and shape methods once (they live in
``dezero_xp.functions``, which the core may not import).
"""

from typing import Any

from dezero_xp import _engine
from dezero_xp import functions as _F
from dezero_xp._config import Config, no_grad, test_mode, using_config
from dezero_xp.backend import (
    Backend,
    Device,
    DeviceFallbackWarning,
    DeviceMismatchError,
    DeviceUnavailableError,
    cuda_available,
    get_array_module,
    get_backend,
    get_default_device,
    seed,
    set_default_device,
    set_eager_checks,
    set_strict_devices,
)
from dezero_xp.core import Function, Parameter, Variable, as_array, as_variable
from dezero_xp.functions import namespace as _namespace

__version__ = "0.1.0"

# DeZero's switch for the book's stage 2: the package always exports the full core; the simple
# one (raw-array gradients) is ``dezero_xp.core_simple``.
is_simple_core = False

__all__ = [
    "Backend",
    "Config",
    "Device",
    "DeviceFallbackWarning",
    "DeviceMismatchError",
    "DeviceUnavailableError",
    "DataLoader",
    "Dataset",
    "Function",
    "Layer",
    "Model",
    "Parameter",
    "SeqDataLoader",
    "Variable",
    "arange",
    "as_array",
    "as_variable",
    "cuda_available",
    "from_dlpack",
    "full",
    "full_like",
    "get_array_module",
    "get_backend",
    "get_default_device",
    "is_simple_core",
    "no_grad",
    "ones",
    "ones_like",
    "rand",
    "randn",
    "seed",
    "set_default_device",
    "set_eager_checks",
    "set_strict_devices",
    "setup_variable",
    "tensor",
    "test_mode",
    "to_dlpack",
    "using_config",
    "zeros",
    "zeros_like",
]


def _reshape(self: Variable, *shape: Any) -> Variable:
    """``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]  # type: ignore[assignment]
    return _F.reshape(self, tuple(shape))


def _transpose(self: Variable, *axes: Any) -> Variable:
    """``x.transpose()``, ``x.transpose(1, 0)`` or ``x.transpose((1, 0))``."""
    if not axes:
        axes = None  # type: ignore[assignment]
    elif len(axes) == 1 and (isinstance(axes[0], (tuple, list)) or axes[0] is None):
        axes = axes[0]  # type: ignore[assignment]
    return _F.transpose(self, axes)


def setup_variable() -> None:
    """Give Variable its operators, ``backward`` and DeZero's convenience methods, and Function
    its DeZero ``backward`` (done once at import)."""
    _engine.use_namespaces(_namespace.array_namespace, _namespace.graph_namespace)
    Function.backward = _engine.function_backward  # type: ignore[method-assign]
    V: Any = Variable  # the methods below exist for type checkers (core.Variable) already
    V.backward = _engine.backward
    # The operators call the ops directly (Function.__call__ names the op in its errors), not
    # through F's input layer: they are the hottest calls of all.
    ew = _F.elementwise
    V.__add__ = V.__radd__ = ew.add
    V.__sub__ = ew.sub
    V.__rsub__ = ew.rsub
    V.__mul__ = V.__rmul__ = ew.mul
    V.__truediv__ = ew.div
    V.__rtruediv__ = ew.rdiv
    V.__neg__ = ew.neg
    V.__pow__ = ew.pow
    V.__rpow__ = ew.rpow
    V.__matmul__ = _F.linalg.matmul
    V.__rmatmul__ = lambda self, other: _F.linalg.matmul(other, self)
    V.__getitem__ = _F.shape.get_item
    V.reshape = _reshape
    V.transpose = _transpose
    V.T = property(lambda self: _F.transpose(self))
    V.mT = property(_F.matrix_transpose)
    V.sum = lambda self, axis=None, keepdims=False: _F.sum(self, axis, keepdims)
    V.mean = lambda self, axis=None, keepdims=False: _F.mean(self, axis, keepdims)
    V.max = lambda self, axis=None, keepdims=False: _F.max(self, axis, keepdims)
    V.min = lambda self, axis=None, keepdims=False: _F.min(self, axis, keepdims)


setup_variable()

# DeZero's package layout: dz.layers, dz.optimizers, ... and the classes it exports at the top.
from dezero_xp import (  # noqa: E402, F401 - after setup_variable(), as DeZero does
    core_simple,
    creation,
    cuda,
    dataloaders,
    datasets,
    functions,
    functions_conv,
    interop,
    layers,
    models,
    optimizers,
    transforms,
    utils,
)
from dezero_xp.creation import (  # noqa: E402
    arange,
    full,
    full_like,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from dezero_xp.dataloaders import DataLoader, SeqDataLoader  # noqa: E402
from dezero_xp.datasets import Dataset  # noqa: E402
from dezero_xp.interop import from_dlpack, to_dlpack  # noqa: E402
from dezero_xp.layers import Layer  # noqa: E402
from dezero_xp.models import Model  # noqa: E402
