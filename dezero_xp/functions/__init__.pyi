"""What type checkers see of ``dezero_xp.functions`` (``F``).

``__init__.py`` fills the namespace in a loop (each family's public functions behind the input
layer of ``dezero_xp.functions._public``, which keeps their signatures), so a type checker cannot
read the names from it. This stub says the same statically: every family's ``__all__``, and
DeZero's op classes. It follows the families by itself (star imports); only the op classes listed
in ``__init__.py`` are repeated here.
"""

# ruff: noqa: F403 - the star imports are the point: each family's __all__, as __init__.py

from dezero_xp.functions import activation as activation
from dezero_xp.functions import collective as collective
from dezero_xp.functions import conv as conv
from dezero_xp.functions import elementwise as elementwise
from dezero_xp.functions import linalg as linalg
from dezero_xp.functions import loss as loss
from dezero_xp.functions import nn as nn
from dezero_xp.functions import reduce as reduce
from dezero_xp.functions import shape as shape
from dezero_xp.functions.activation import *
from dezero_xp.functions.activation import LeakyReLU as LeakyReLU
from dezero_xp.functions.activation import LogSoftmax as LogSoftmax
from dezero_xp.functions.activation import ReLU as ReLU
from dezero_xp.functions.activation import Sigmoid as Sigmoid
from dezero_xp.functions.activation import Softmax as Softmax
from dezero_xp.functions.collective import *
from dezero_xp.functions.conv import *
from dezero_xp.functions.elementwise import *
from dezero_xp.functions.elementwise import Clip as Clip
from dezero_xp.functions.elementwise import Cos as Cos
from dezero_xp.functions.elementwise import Exp as Exp
from dezero_xp.functions.elementwise import Log as Log
from dezero_xp.functions.elementwise import Sin as Sin
from dezero_xp.functions.elementwise import Tanh as Tanh
from dezero_xp.functions.linalg import *
from dezero_xp.functions.linalg import MatMul as MatMul
from dezero_xp.functions.loss import *
from dezero_xp.functions.loss import MeanSquaredError as MeanSquaredError
from dezero_xp.functions.loss import SoftmaxCrossEntropy as SoftmaxCrossEntropy
from dezero_xp.functions.nn import *
from dezero_xp.functions.nn import BatchNorm as BatchNorm
from dezero_xp.functions.nn import Linear as Linear
from dezero_xp.functions.pooling import *
from dezero_xp.functions.reduce import *
from dezero_xp.functions.reduce import Max as Max
from dezero_xp.functions.reduce import Min as Min
from dezero_xp.functions.reduce import Sum as Sum
from dezero_xp.functions.shape import *
from dezero_xp.functions.shape import BroadcastTo as BroadcastTo
from dezero_xp.functions.shape import GetItem as GetItem
from dezero_xp.functions.shape import GetItemGrad as GetItemGrad
from dezero_xp.functions.shape import Reshape as Reshape
from dezero_xp.functions.shape import SumTo as SumTo
from dezero_xp.functions.shape import Transpose as Transpose

FAMILIES: tuple[object, ...]
