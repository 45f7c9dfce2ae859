"""DeZero's ``dezero.functions``: every differentiable op, one family per module.

``import dezero_xp.functions as F`` replaces ``import dezero.functions as F``.
This file only assembles the families.
"""

from dezero_xp.functions.activation import *  # noqa: F403
from dezero_xp.functions.collective import *  # noqa: F403
from dezero_xp.functions.conv import *  # noqa: F403
from dezero_xp.functions.elementwise import *  # noqa: F403
from dezero_xp.functions.linalg import *  # noqa: F403
from dezero_xp.functions.loss import *  # noqa: F403
from dezero_xp.functions.nn import *  # noqa: F403
from dezero_xp.functions.pooling import *  # noqa: F403
from dezero_xp.functions.reduce import *  # noqa: F403
from dezero_xp.functions.shape import *  # noqa: F403
