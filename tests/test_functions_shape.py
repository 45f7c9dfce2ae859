"""Shape ops (dezero_xp/functions/shape.py): the declarative checker on every backend, the
get_item keys each library supports, repeated-index accumulation, Variable's shape methods and
the errors bad shapes raise."""

import re

import numpy as np
import pytest
from opcheck import make_op_tests, op_case

import dezero_xp as dz
import dezero_xp.functions as F

NOT_STRICT = ("numpy", "cupy", "torch")  # keys mixing arrays and slices


def squared(name, fn, ref, shapes, **kwargs):
    """The op followed by a square, so double backward goes through the op's backward."""
    return op_case(
        name + "_sq",
        lambda *a: fn(*a) ** 2,
        lambda *a: np.asarray(ref(*a)) ** 2,
        shapes,
        **kwargs,
    )


def key_case(name, key, shapes, **kwargs):
    """A get_item case with a constant key (NumPy arrays in it go to the backend)."""
    return op_case(
        name,
        F.get_item,
        lambda x, k: x[k],
        shapes,
        consts=lambda: (key,),
        **kwargs,
    )


REPEATED = np.array([0, 2, 0, 0])

CASES = [
    # reshape
    op_case("reshape", lambda x: F.reshape(x, (3, 2)), lambda x: x.reshape(3, 2), [(2, 3)]),
    op_case("reshape_infer", lambda x: F.reshape(x, (-1, 4)), lambda x: x.reshape(-1, 4), [(2, 6)]),
    op_case("reshape_int", lambda x: F.reshape(x, 6), lambda x: x.reshape(6), [(2, 3)]),
    op_case("reshape_to_0d", lambda x: F.reshape(x, ()), lambda x: x.reshape(()), [(1, 1)]),
    op_case("reshape_from_0d", lambda x: F.reshape(x, (1, 1)), lambda x: x.reshape(1, 1), [()]),
    squared("reshape", lambda x: F.reshape(x, (3, -1)), lambda x: x.reshape(3, -1), [(2, 3)]),
    # transpose
    op_case("transpose", F.transpose, np.transpose, [(), (3,), (2, 3), (2, 3, 4)]),
    op_case(
        "transpose_axes",
        lambda x: F.transpose(x, (1, 0, 2)),
        lambda x: np.transpose(x, (1, 0, 2)),
        [(2, 3, 4)],
    ),
    op_case(
        "transpose_negative_axes",
        lambda x: F.transpose(x, (-1, 0, -2)),
        lambda x: np.transpose(x, (-1, 0, -2)),
        [(2, 3, 4)],
    ),
    op_case("T", lambda x: x.T, lambda x: x.T, [(2, 3)]),
    op_case("matrix_transpose", F.matrix_transpose, lambda x: np.swapaxes(x, -1, -2), [(2, 3, 4)]),
    squared(
        "transpose",
        lambda x: F.transpose(x, (2, 0, 1)),
        lambda x: x.transpose(2, 0, 1),
        [(2, 3, 4)],
    ),
    # get_item: basic keys (short keys mean "..." for the rest, on every backend)
    key_case("get_item_int", 1, [(3, 4)]),
    key_case("get_item_negative_int", -1, [(3, 4, 2)]),
    key_case("get_item_ints_0d", (1, 2), [(3, 4)]),
    key_case("get_item_slices", (slice(1, 3), slice(None, None, 2)), [(4, 5)]),
    key_case("get_item_column", (slice(None), 0), [(3, 4, 2)]),
    key_case("get_item_ellipsis", (Ellipsis, 1), [(2, 3, 4)]),
    key_case("get_item_newaxis", (None, Ellipsis, 0), [(3, 4)]),
    key_case("get_item_0d", (), [()]),
    key_case(
        "get_item_negative_step",
        (slice(None, None, -1), slice(3, 0, -2)),
        [(3, 4)],
    ),
    # get_item: integer arrays (repeats accumulate in backward)
    key_case("get_item_repeated_rows", REPEATED, [(4, 3)]),
    key_case("get_item_repeated_1d", REPEATED, [(3,)]),
    key_case("get_item_negative_index", np.array([-1, 0, -1]), [(3, 2)]),
    key_case("get_item_2d_index", np.array([[0, 2], [2, 2], [1, 0]]), [(3, 4)]),
    key_case("get_item_index_axis1", (slice(None), np.array([3, 1, 3])), [(2, 4, 3)]),
    key_case("get_item_index_last", (Ellipsis, np.array([[1, 1], [0, 1]])), [(2, 3, 2)]),
    key_case("get_item_0d_index", np.array(2), [(3, 2)]),
    key_case("get_item_all_arrays", (np.array([0, 2, 0]), np.array([1, 1, 1])), [(3, 4)]),
    key_case("get_item_array_and_int", (np.array([1, 1, 0]), 2), [(2, 3)]),
    key_case(
        "get_item_array_and_slice",
        (np.array([0, 0, 2]), slice(1, 3)),
        [(3, 4)],
        backends=NOT_STRICT,
    ),
    key_case("get_item_mask", np.array([True, False, True]), [(3, 2)]),
    op_case("get_item_list", lambda x: F.get_item(x, [0, 0, 2]), lambda x: x[[0, 0, 2]], [(3, 2)]),
    op_case("getitem_operator", lambda x: x[1:, 0], lambda x: x[1:, 0], [(3, 2)]),
    squared(
        "get_item_repeated", lambda x: F.get_item(x, [1, 1, 0]), lambda x: x[[1, 1, 0]], [(2, 3)]
    ),
    squared("get_item_basic", lambda x: x[1, ::2], lambda x: x[1, ::2], [(2, 3)]),
    squared(
        "get_item_index_axis1",
        lambda x: x[:, [2, 2, 0]],
        lambda x: x[:, [2, 2, 0]],
        [(2, 3)],
    ),
    # axes
    op_case("expand_dims", lambda x: F.expand_dims(x, 0), lambda x: x[None], [(), (2, 3)]),
    op_case(
        "expand_dims_last",
        lambda x: F.expand_dims(x, -1),
        lambda x: np.expand_dims(x, -1),
        [(2, 3)],
    ),
    op_case(
        "expand_dims_middle",
        lambda x: F.expand_dims(x, 1),
        lambda x: np.expand_dims(x, 1),
        [(2, 3)],
    ),
    op_case("flatten", F.flatten, lambda x: x.reshape(x.shape[0], -1), [(3,), (2, 3, 4)]),
    op_case("squeeze", F.squeeze, np.squeeze, [(), (1, 3, 1)]),
    op_case("squeeze_axis", lambda x: F.squeeze(x, 0), lambda x: np.squeeze(x, 0), [(1, 3, 1)]),
    op_case(
        "squeeze_axes",
        lambda x: F.squeeze(x, (-1, 0)),
        lambda x: np.squeeze(x, (-1, 0)),
        [(1, 3, 1)],
    ),
    squared("squeeze", F.squeeze, np.squeeze, [(1, 3, 1)]),
    # joining
    op_case(
        "concat",
        lambda *xs: F.concat(xs, axis=0),
        lambda *xs: np.concatenate(xs, axis=0),
        [[(2, 3), (4, 3)], [(1, 2), (2, 2), (3, 2)]],
    ),
    op_case(
        "concat_last",
        lambda a, b: F.concat([a, b], axis=-1),
        lambda a, b: np.concatenate([a, b], axis=-1),
        [[(2, 3), (2, 1)], [(2, 2, 1), (2, 2, 3)]],
    ),
    squared(
        "concat",
        lambda a, b: F.concat((a, b), axis=1),
        lambda a, b: np.concatenate((a, b), axis=1),
        [[(2, 1), (2, 3)]],
    ),
    op_case(
        "stack",
        lambda a, b: F.stack([a, b]),
        lambda a, b: np.stack([a, b]),
        [[(), ()], [(2, 3), (2, 3)]],
    ),
    op_case(
        "stack_last",
        lambda a, b, c: F.stack([a, b, c], axis=-1),
        lambda a, b, c: np.stack([a, b, c], axis=-1),
        [[(2, 3), (2, 3), (2, 3)]],
    ),
    squared(
        "stack",
        lambda a, b: F.stack([a, b], axis=1),
        lambda a, b: np.stack([a, b], axis=1),
        [[(2, 3), (2, 3)]],
    ),
    # broadcasting
    op_case(
        "broadcast_to",
        lambda x: F.broadcast_to(x, (2, 3)),
        lambda x: np.broadcast_to(x, (2, 3)),
        [(), (3,), (1, 3), (2, 1)],
    ),
    op_case(
        "broadcast_to_rank",
        lambda x: F.broadcast_to(x, (4, 2, 3)),
        lambda x: np.broadcast_to(x, (4, 2, 3)),
        [(1, 3)],
    ),
    squared(
        "broadcast_to",
        lambda x: F.broadcast_to(x, (2, 3)),
        lambda x: np.broadcast_to(x, (2, 3)),
        [(2, 1)],
    ),
    op_case(
        "sum_to_row",
        lambda x: F.sum_to(x, (3,)),
        lambda x: x.reshape(-1, 3).sum(axis=0),
        [(2, 3), (4, 2, 3)],
    ),
    op_case(
        "sum_to_keep",
        lambda x: F.sum_to(x, (1, 3)),
        lambda x: x.sum(axis=(0, 1)).reshape(1, 3),
        [(4, 2, 3)],
    ),
    op_case(
        "sum_to_column",
        lambda x: F.sum_to(x, (2, 1)),
        lambda x: x.sum(axis=1, keepdims=True),
        [(2, 3)],
    ),
    op_case("sum_to_0d", lambda x: F.sum_to(x, ()), np.sum, [(2, 3)]),
    squared(
        "sum_to",
        lambda x: F.sum_to(x, (2, 1)),
        lambda x: x.sum(axis=1, keepdims=True),
        [(2, 3)],
    ),
]

test_shape_ops = make_op_tests(CASES)


# ---------------------------------------------------------------------------------- get_item


def test_repeated_indices_accumulate(xb):
    x = xb.variable(np.zeros(4, dtype=np.float32))
    y = F.get_item(x, xb.asarray(np.array([0, 0, 0, 2, 3, 3])))
    y.backward()
    np.testing.assert_array_equal(xb.numpy(x.grad), [3.0, 0.0, 1.0, 2.0])
    assert x.grad.dtype == xb.dtype("float32")


def test_repeated_rows_accumulate_with_gradient(xb):
    w = xb.variable(np.arange(6.0).reshape(3, 2))
    index = np.array([[2, 0], [2, 2]])
    y = w[xb.asarray(index)]  # embedding lookup: (2, 2) indices -> (2, 2, 2)
    gy = np.arange(8.0).reshape(2, 2, 2)
    (y * xb.asarray(gy)).sum().backward()
    expected = np.zeros((3, 2))
    np.add.at(expected, index, gy)
    np.testing.assert_array_equal(xb.numpy(w.grad), expected)


def test_repeated_pairs_accumulate(xb):
    x = xb.variable(np.zeros((2, 3)))
    rows, cols = np.array([1, 1, 0, 1]), np.array([2, 2, 0, 2])
    F.get_item(x, (xb.asarray(rows), xb.asarray(cols))).backward()
    np.testing.assert_array_equal(xb.numpy(x.grad), [[1, 0, 0], [0, 0, 3]])


def test_variable_key(xb):
    x = xb.variable(np.arange(6.0).reshape(3, 2))
    key = dz.Variable(xb.asarray(np.array([2, 2])))
    y = x[key]
    np.testing.assert_array_equal(xb.numpy(y), [[4, 5], [4, 5]])
    y.backward()
    np.testing.assert_array_equal(xb.numpy(x.grad), [[0, 0], [0, 0], [2, 2]])


def test_get_item_backward_leaves_input_untouched(xb):
    host = np.arange(12.0).reshape(3, 4)
    data = xb.asarray(host)
    x = dz.Variable(data)
    y = x[1]
    y.backward()
    np.testing.assert_array_equal(xb.numpy(data), host)
    np.testing.assert_array_equal(xb.numpy(x.grad), [[0] * 4, [1] * 4, [0] * 4])


def test_get_item_out_of_range_names_the_op(xb):
    x = xb.variable(np.zeros((2, 3)))
    with pytest.raises(IndexError, match="GetItem"):
        x[0, 1, 2]


# ---------------------------------------------------------------------------------- methods


def test_reshape_methods(xb):
    host = np.arange(6.0)
    x = xb.variable(host)
    for y in (x.reshape(2, 3), x.reshape((2, 3)), x.reshape([2, 3]), x.reshape(-1, 3)):
        assert y.shape == (2, 3)
        np.testing.assert_array_equal(xb.numpy(y), host.reshape(2, 3))
    (x.reshape(3, 2) * xb.asarray(np.arange(6.0).reshape(3, 2))).sum().backward()
    np.testing.assert_array_equal(xb.numpy(x.grad), np.arange(6.0))
    assert x.reshape(6) is x  # unchanged shape: no new node


def test_transpose_methods(xb):
    host = np.arange(6.0).reshape(2, 3)
    x = xb.variable(host)
    for y in (x.transpose(), x.transpose(1, 0), x.transpose((1, 0)), x.T, x.mT):
        np.testing.assert_array_equal(xb.numpy(y), host.T)
    cube = xb.variable(np.arange(24.0).reshape(2, 3, 4))
    np.testing.assert_array_equal(
        xb.numpy(cube.transpose(2, 0, 1)), np.arange(24.0).reshape(2, 3, 4).transpose(2, 0, 1)
    )
    (x.T * xb.asarray(host.T)).sum().backward()
    np.testing.assert_array_equal(xb.numpy(x.grad), host)


def test_indexing_operator(xb):
    host = np.arange(12.0).reshape(3, 4)
    x = xb.variable(host)
    np.testing.assert_array_equal(xb.numpy(x[1]), host[1])
    np.testing.assert_array_equal(xb.numpy(x[:, 0]), host[:, 0])
    np.testing.assert_array_equal(xb.numpy(x[..., 1:3]), host[..., 1:3])
    np.testing.assert_array_equal(xb.numpy(x[[2, 0]]), host[[2, 0]])
    x[:, 1:3].sum().backward()
    np.testing.assert_array_equal(xb.numpy(x.grad), np.tile([0.0, 1.0, 1.0, 0.0], (3, 1)))


# ---------------------------------------------------------------------------------- errors


def _raises(exc, *fragments):
    """pytest.raises matching every fragment (literally, in any order)."""
    pattern = "".join(f"(?=.*{re.escape(f)})" for f in fragments)
    return pytest.raises(exc, match=re.compile(pattern, re.S))


def test_reshape_incompatible(xb):
    x = xb.variable(np.zeros((2, 3)))
    with _raises(ValueError, "reshape", "(2, 3)", "(4, 2)"):
        F.reshape(x, (4, 2))
    with _raises(ValueError, "reshape", "(2, 3)", "(-1, 4)"):
        x.reshape(-1, 4)
    with _raises(ValueError, "reshape", "(-1, -1)"):
        x.reshape(-1, -1)


def test_transpose_bad_axes(xb):
    x = xb.variable(np.zeros((2, 3)))
    with _raises(ValueError, "transpose", "(0, 0)", "(2, 3)"):
        F.transpose(x, (0, 0))
    with _raises(ValueError, "transpose", "(0, 1, 2)"):
        x.transpose(0, 1, 2)


def test_squeeze_non_unit_axis(xb):
    x = xb.variable(np.zeros((2, 1)))
    with _raises(ValueError, "squeeze", "axis 0", "(2, 1)", "length 2"):
        F.squeeze(x, 0)
    with _raises(ValueError, "squeeze", "axis 2", "(2, 1)"):
        F.squeeze(x, 2)


def test_expand_dims_out_of_range(xb):
    x = xb.variable(np.zeros((2, 3)))
    with _raises(ValueError, "expand_dims", "axis 3"):
        F.expand_dims(x, 3)
    with _raises(ValueError, "expand_dims", "axis -4"):
        F.expand_dims(x, -4)


def test_flatten_0d(xb):
    with _raises(ValueError, "flatten", "0-d"):
        F.flatten(xb.variable(np.float64(1.0)))


def test_concat_and_stack_mismatch(xb):
    a, b = xb.variable(np.zeros((2, 3))), xb.variable(np.zeros((3, 2)))
    with _raises(ValueError, "concat", "(2, 3)", "(3, 2)"):
        F.concat([a, b], axis=0)
    with _raises(ValueError, "concat", "axis 2"):
        F.concat([a, a], axis=2)
    with _raises(ValueError, "stack", "(2, 3)", "(3, 2)"):
        F.stack([a, b])
    with _raises(TypeError, "concat", "sequence"):
        F.concat(a)
    with _raises(ValueError, "stack", "at least one"):
        F.stack([])


def test_broadcast_to_and_sum_to_incompatible(xb):
    x = xb.variable(np.zeros((2, 3)))
    with _raises(ValueError, "broadcast_to", "(2, 3)", "(4, 3)"):
        F.broadcast_to(x, (4, 3))
    with _raises(ValueError, "broadcast_to", "(2, 3)", "(3,)"):
        F.broadcast_to(x, (3,))
    with _raises(ValueError, "sum_to", "(2, 3)", "(4,)"):
        F.sum_to(x, (4,))
    with _raises(ValueError, "sum_to", "(2, 3)", "(1, 2, 3)"):
        F.sum_to(x, (1, 2, 3))


def test_host_index_arrays_are_copied_to_the_inputs_device(xb):
    x = xb.variable(np.arange(6.0).reshape(3, 2))
    y = x[np.array([0, 2, 2])]
    y.sum().backward()
    assert y.backend is xb.backend
    np.testing.assert_array_equal(xb.numpy(x.grad), [[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]])


def test_index_array_on_another_device_is_an_error():
    import array_api_strict as strict

    x = dz.Variable(strict.asarray(np.arange(6.0), device=strict.Device("device1")))
    index = strict.asarray([0, 1])  # default device, not device1
    with pytest.raises(dz.DeviceMismatchError, match="get_item"):
        x[index]
