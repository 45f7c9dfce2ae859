"""DeZero's ``dezero.functions``: every differentiable op, one family per module.

``import dezero_xp.functions as F`` replaces ``import dezero.functions as F``.
This file only assembles the families, and names DeZero's op classes (``F.Exp``,
``F.Sigmoid``, ``F.Linear``, ...) as DeZero's module does, for code that subclasses them.
"""

from dezero_xp.functions.activation import *  # noqa: F403
from dezero_xp.functions.activation import (  # noqa: F401
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
)
from dezero_xp.functions.collective import *  # noqa: F403
from dezero_xp.functions.conv import *  # noqa: F403
from dezero_xp.functions.elementwise import *  # noqa: F403
from dezero_xp.functions.elementwise import Clip, Cos, Exp, Log, Sin, Tanh  # noqa: F401
from dezero_xp.functions.linalg import *  # noqa: F403
from dezero_xp.functions.linalg import MatMul  # noqa: F401
from dezero_xp.functions.loss import *  # noqa: F403
from dezero_xp.functions.loss import MeanSquaredError, SoftmaxCrossEntropy  # noqa: F401
from dezero_xp.functions.nn import *  # noqa: F403
from dezero_xp.functions.nn import BatchNorm, Linear  # noqa: F401
from dezero_xp.functions.pooling import *  # noqa: F403
from dezero_xp.functions.reduce import *  # noqa: F403
from dezero_xp.functions.reduce import Max, Min, Sum  # noqa: F401
from dezero_xp.functions.shape import *  # noqa: F403
from dezero_xp.functions.shape import (  # noqa: F401
    BroadcastTo,
    GetItem,
    GetItemGrad,
    Reshape,
    SumTo,
    Transpose,
)
