"""Bad data is refused where it enters: DataLoader arguments and ragged examples, and
``dz.tensor`` of things that are not numbers."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

import dezero_xp as dz
from dezero_xp.dataloaders import DataLoader, SeqDataLoader

HAS_STRICT = importlib.util.find_spec("array_api_strict") is not None


class Pairs:
    """A plain dataset: example i is (x_i, t_i) from two lists."""

    def __init__(self, xs, ts):
        self.xs, self.ts = xs, ts

    def __len__(self):
        return len(self.xs)

    def __getitem__(self, i):
        return self.xs[i], self.ts[i]


DATA = Pairs([np.zeros(2)] * 8, [0] * 8)


@pytest.mark.parametrize(
    ("batch_size", "error", "fragment"),
    [
        (2.5, TypeError, "DataLoader: batch_size must be an int, got float 2.5"),
        ("4", TypeError, "DataLoader: batch_size must be an int, got str '4'"),
        (True, TypeError, "DataLoader: batch_size must be an int"),
        (None, TypeError, "DataLoader: batch_size must be an int"),
        (0, ValueError, "DataLoader: batch_size must be >= 1, got 0"),
        (-3, ValueError, "DataLoader: batch_size must be >= 1"),
    ],
)
def test_bad_batch_sizes_are_refused(batch_size, error, fragment):
    with pytest.raises(error, match=fragment):
        DataLoader(DATA, batch_size)
    with pytest.raises(error, match=fragment.replace("DataLoader", "SeqDataLoader")):
        SeqDataLoader(DATA, batch_size)


@pytest.mark.parametrize("loader", [DataLoader, SeqDataLoader])
@pytest.mark.parametrize("dtype", ["banana", "int64", 3])
def test_a_dtype_that_is_not_floating_is_refused_by_name(loader, dtype):
    # Was NumPy's "data type 'banana' not understood"; 'int64' truncated the data silently.
    with pytest.raises(TypeError, match=rf"{loader.__name__}: dtype must be None or a floating"):
        loader(DATA, 2, dtype=dtype)


def test_numpy_integer_batch_size_works():
    loader = DataLoader(DATA, np.int64(4), shuffle=False)
    assert loader.batch_size == 4 and type(loader.batch_size) is int and len(loader) == 2


@pytest.mark.parametrize("what", ["examples", "labels"])
def test_examples_of_different_shapes_name_both(what):
    xs = [np.zeros(2), np.zeros(2), np.zeros(3), np.zeros(2)]
    ts = [0, 1, 2, 3]
    if what == "labels":
        xs, ts = [np.zeros(2)] * 4, [np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(4)]
    loader = DataLoader(Pairs(xs, ts), 4, shuffle=False)
    expected = r"\(3,\)" if what == "examples" else r"\(4,\)"
    with pytest.raises(ValueError, match=rf"{what} of different shapes.*item \d has {expected}"):
        next(loader)


@pytest.mark.parametrize("device", ["cpu"] + (["strict"] if HAS_STRICT else []))
@pytest.mark.parametrize(
    ("data", "dtype", "error", "fragment"),
    [
        ([1, "a"], None, TypeError, "found str 'a'"),
        (["1.5"], "float32", TypeError, "found str '1.5'"),
        ([[1.0], [None]], None, TypeError, "found NoneType"),
        ([b"x"], None, TypeError, "found bytes"),
        ([2**70], None, OverflowError, "does not fit the default integer dtype"),
    ],
)
def test_tensor_refuses_what_is_not_numbers(device, data, dtype, error, fragment):
    with pytest.raises(error, match=rf"tensor: .*{fragment}"):
        dz.tensor(data, dtype=dtype, device=device)


def test_tensor_still_takes_numbers():
    assert dz.tensor([True, 1]).dtype == np.int64
    assert dz.tensor([2**70], dtype="float64").data[0] == 2.0**70
    assert dz.tensor([[1, 2.5]]).dtype == np.float32


@pytest.mark.parametrize(
    "array", [np.array(["a"]), np.array([b"x"]), np.array([object()]), np.array(["2020"], "M8[D]")]
)
def test_variable_refuses_arrays_that_hold_no_numbers(array):
    dtype = re.escape(str(array.dtype))
    with pytest.raises(TypeError, match=rf"Variable: data must hold numbers.*{dtype}"):
        dz.Variable(array)
    x = dz.Variable(np.zeros(1))
    with pytest.raises(TypeError, match="Variable.data: data must hold numbers"):
        x.data = array
    assert x.data.dtype == np.float64  # left as it was


def test_variable_still_takes_every_kind_of_number():
    for dtype in (bool, np.int8, np.uint16, np.float16, np.float64, np.complex64):
        assert dz.Variable(np.zeros(2, dtype)).dtype == dtype


@pytest.mark.parametrize("shuffle", ["yes", 1.0, None])
def test_dataloader_refuses_a_shuffle_that_is_not_a_flag(shuffle):
    with pytest.raises(TypeError, match="DataLoader: shuffle must be True or False"):
        dz.DataLoader([(np.zeros(2), 0)] * 4, 2, shuffle=shuffle)


@pytest.mark.parametrize("name", [3, b"w", ["w"]])
def test_variable_refuses_a_name_that_is_not_a_string(name):
    with pytest.raises(TypeError, match="Variable: name must be a str or None"):
        dz.Variable(np.zeros(2), name=name)


@pytest.mark.parametrize("flag", ["retain_grad", "create_graph"])
def test_backward_refuses_flags_that_are_not_booleans(flag):
    x = dz.Variable(np.ones(2))
    y = (x * 2.0).sum()
    with pytest.raises(TypeError, match=f"backward: {flag} must be True or False"):
        y.backward(**{flag: "x"})
    y.backward(**{flag: True})  # a real flag still works
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])
