"""DeZero's ``dezero.functions``: every differentiable op, one family per module.

``import dezero_xp.functions as F`` replaces ``import dezero.functions as F``.
This file assembles the families: each public function of a family's ``__all__`` is exported
behind the one input layer (``dezero_xp.functions._public``: NumPy-scalar hyperparameters as
Python scalars, errors that name the op), and ``__all__`` here is their union. It also names
DeZero's op classes (``F.Exp``, ``F.Sigmoid``, ``F.Linear``, ...) as DeZero's module does, for
code that subclasses them.
"""

from dezero_xp.functions import (
    activation,
    collective,
    conv,
    elementwise,
    linalg,
    loss,
    nn,
    reduce,
    shape,
)
from dezero_xp.functions import pooling as _pooling
from dezero_xp.functions._public import public as _public
from dezero_xp.functions.activation import (  # noqa: F401
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
)
from dezero_xp.functions.elementwise import Clip, Cos, Exp, Log, Sin, Tanh  # noqa: F401
from dezero_xp.functions.linalg import MatMul  # noqa: F401
from dezero_xp.functions.loss import MeanSquaredError, SoftmaxCrossEntropy  # noqa: F401
from dezero_xp.functions.nn import BatchNorm, Linear  # noqa: F401
from dezero_xp.functions.reduce import Max, Min, Sum  # noqa: F401
from dezero_xp.functions.shape import (  # noqa: F401
    BroadcastTo,
    GetItem,
    GetItemGrad,
    Reshape,
    SumTo,
    Transpose,
)

FAMILIES = (activation, collective, conv, elementwise, linalg, loss, nn, _pooling, reduce, shape)

__all__: list[str] = []
for _family in FAMILIES:
    for _name in _family.__all__:
        _obj = getattr(_family, _name)
        # Classes (F.AllReduce) are exported as they are; functions behind the input layer.
        if callable(_obj) and not isinstance(_obj, type):
            _obj = _public(_obj, _name)
        globals()[_name] = _obj
        __all__.append(_name)
del _family, _name, _obj
