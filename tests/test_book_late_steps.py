"""The worked examples of "Deep Learning from Scratch 3" (DeZero), steps 37-60, on NumPy.

Each test is the step's example as the book writes it (``np.random.seed`` where the book seeds,
the book's hyperparameters; long trainings shortened to their first printed lines) and checks
the numbers DeZero prints for it: DeZero's own code run on the book's NumPy (1.x) gives them,
and the step 42-47 values are the ones the book prints. Losses of the float64 trainings are
compared within 1e-9 relative (sums may be ordered differently), float32 ones within 1e-6, the
optimizer runs of step 46 within 1e-7 (see there); short computations exactly.
Where the book prints random numbers without seeding (dropout, the RNN trainings), the test
seeds and compares with the same computation written in plain NumPy or with DeZero's seeded
figures. Steps that need a download (51-53 MNIST, 58 VGG16's weights) or a GPU (52) run in
tests/test_examples.py and tests/test_gpu_paths.py on local data instead.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import dezero_xp as dezero
import dezero_xp.functions as F
import dezero_xp.layers as L
from dezero_xp import DataLoader, Model, SeqDataLoader, Variable, as_variable, optimizers
from dezero_xp.models import MLP


@pytest.fixture(autouse=True)
def _books_rng():
    """The book's scripts draw from NumPy's global generator (the suite seeds dz.seed)."""
    state = np.random.get_state()
    dezero.seed(None)
    yield
    np.random.set_state(state)


def close(got, printed, rtol=1e-9):
    assert math.isclose(float(got), printed, rel_tol=rtol), (float(got), printed)


# --------------------------------------------------------------------------- stage 4: tensors


def test_step37_sum_of_a_tensor_sum():
    x = Variable(np.array([[1, 2, 3], [4, 5, 6]]))
    c = Variable(np.array([[10, 20, 30], [40, 50, 60]]))
    t = x + c
    y = F.sum(t)
    y.backward(retain_grad=True)
    assert y.grad.data.tolist() == 1
    for g in (t.grad, x.grad, c.grad):
        assert g.data.tolist() == [[1, 1, 1], [1, 1, 1]]
    assert y.data.tolist() == 231


def test_step38_reshape_and_transpose():
    x = Variable(np.array([[0, 1, 2], [3, 4, 5]]))
    y = F.reshape(x, (6,))
    y.backward(retain_grad=True)
    assert x.grad.data.tolist() == [[1, 1, 1], [1, 1, 1]]
    x = Variable(np.array([[1, 2, 3], [4, 5, 6]]))
    y = F.transpose(x)
    y.backward()
    assert x.grad.shape == (2, 3) and y.shape == (3, 2)
    assert x.reshape(3, 2).shape == x.reshape((3, 2)).shape == (3, 2) and x.T.shape == (3, 2)


def test_step39_sum_with_axis_and_keepdims():
    x = Variable(np.array([1, 2, 3, 4, 5, 6]))
    y = F.sum(x)
    y.backward()
    assert y.data.tolist() == 21 and x.grad.data.tolist() == [1] * 6
    x = Variable(np.array([[1, 2, 3], [4, 5, 6]]))
    y = F.sum(x, axis=0)
    y.backward()
    assert y.data.tolist() == [5, 7, 9] and x.grad.data.tolist() == [[1, 1, 1], [1, 1, 1]]
    x = Variable(np.random.randn(2, 3, 4, 5))
    assert x.sum(keepdims=True).shape == (1, 1, 1, 1)


def test_step40_broadcast_add():
    x0 = Variable(np.array([1, 2, 3]))
    x1 = Variable(np.array([10]))
    y = x0 + x1
    assert y.data.tolist() == [11, 12, 13]
    y.backward()
    assert x1.grad.data.tolist() == [3]


def test_step41_matmul_gradient_shapes():
    x = Variable(np.random.randn(2, 3))
    w = Variable(np.random.randn(3, 4))
    y = F.matmul(x, w)
    y.backward()
    assert x.grad.shape == (2, 3) and w.grad.shape == (3, 4)
    np.testing.assert_allclose(x.grad.data, np.ones((2, 4)) @ w.data.T, rtol=1e-15)


def _toy_regression(sine):
    np.random.seed(0)
    x = np.random.rand(100, 1)
    y = (np.sin(2 * np.pi * x) if sine else 5 + 2 * x) + np.random.rand(100, 1)
    return x, y


def test_step42_linear_regression():
    x, y = _toy_regression(sine=False)
    x, y = Variable(x), Variable(y)
    W = Variable(np.zeros((1, 1)))
    b = Variable(np.zeros(1))

    def mean_squared_error(x0, x1):
        diff = x0 - x1
        return F.sum(diff**2) / len(diff)

    for i in range(100):
        loss = mean_squared_error(y, F.matmul(x, W) + b)
        W.cleargrad()
        b.cleargrad()
        loss.backward()
        W.data -= 0.1 * W.grad.data
        b.data -= 0.1 * b.grad.data
        if i == 0:
            close(loss.data, 42.296340129442335)
    # the book: variable([[2.11807369]]) variable([5.46608905]) variable(0.07908606512411756)
    close(W.data[0, 0], 2.118073690511974)
    close(b.data[0], 5.466089050922982)
    close(loss.data, 0.07908606512411756)


# The losses steps 43-46 print every 1000 iterations (the first three lines of each).
STEP43_PRINTED = [0.8473695850105871, 0.2514286285183606, 0.24759485466749875]
STEP44_PRINTED = [0.8165178492839196, 0.24990280802148895, 0.24609876581126014]


def test_step43_two_layer_net_by_hand():
    x, y = _toy_regression(sine=True)
    W1 = Variable(0.01 * np.random.randn(1, 10))
    b1 = Variable(np.zeros(10))
    W2 = Variable(0.01 * np.random.randn(10, 1))
    b2 = Variable(np.zeros(1))
    seen = []
    for i in range(2001):
        y_pred = F.linear(F.sigmoid(F.linear(x, W1, b1)), W2, b2)
        loss = F.mean_squared_error(y, y_pred)
        for p in (W1, b1, W2, b2):
            p.cleargrad()
        loss.backward()
        for p in (W1, b1, W2, b2):
            p.data -= 0.2 * p.grad.data
        if i % 1000 == 0:
            seen.append(float(loss.data))
    for got, printed in zip(seen, STEP43_PRINTED, strict=True):
        close(got, printed)


def _train(model_fn, update, iters=2001):
    x, y = _toy_regression(sine=True)
    model = model_fn()
    seen = []
    for i in range(iters):
        loss = F.mean_squared_error(y, model(x))
        model.cleargrads()
        loss.backward()
        update(model)
        if i % 1000 == 0:
            seen.append(float(loss.data))
    return model, seen


# The book's steps 44-45 train float32 weights on float64 data. DeZero kept float64 gradients;
# dezero_xp gives each gradient its parameter's dtype (PyTorch's rule), so each update rounds the
# gradient to float32 first: the losses agree with the book's to float32 precision, not further.
FLOAT32_GRADIENTS_RTOL = 1e-7


def _sgd_by_hand(model):
    for p in model.params():
        p.data -= 0.2 * p.grad.data


def test_step44_linear_layers():
    class Pair(Model):  # step 44's l1, l2 and predict(), as one object
        def __init__(self):
            super().__init__()
            self.l1 = L.Linear(10)
            self.l2 = L.Linear(1)

        def forward(self, x):
            return self.l2(F.sigmoid(self.l1(x)))

    model, seen = _train(Pair, _sgd_by_hand)
    assert model.l1.W.dtype == np.float32  # the float32 weights DeZero's Linear makes
    assert model.l1.W.grad.dtype == np.float32
    close(seen[0], STEP44_PRINTED[0])  # before any update: exact
    for got, printed in zip(seen, STEP44_PRINTED, strict=True):
        close(got, printed, rtol=FLOAT32_GRADIENTS_RTOL)


def test_step45_model_class_prints_step44s_numbers():
    class TwoLayerNet(Model):
        def __init__(self, hidden_size, out_size):
            super().__init__()
            self.l1 = L.Linear(hidden_size)
            self.l2 = L.Linear(out_size)

        def forward(self, x):
            return self.l2(F.sigmoid(self.l1(x)))

    _, seen = _train(lambda: TwoLayerNet(10, 1), _sgd_by_hand, iters=1001)
    close(seen[0], STEP44_PRINTED[0])
    for got, printed in zip(seen, STEP44_PRINTED, strict=False):
        close(got, printed, rtol=FLOAT32_GRADIENTS_RTOL)


def _with_optimizer(make):
    """An update function that sets ``make()`` up on the model at its first call."""
    made = {}

    def update(model):
        if "optimizer" not in made:
            made["optimizer"] = make().setup(model)
        made["optimizer"].update()

    return update


def test_step46_optimizers():
    # The optimizers cast the float64 weight gradients to the float32 weights' dtype before the
    # step (DeZero subtracts the float64 step): the same run to about the 8th digit.
    _, seen = _train(lambda: MLP((10, 1)), _with_optimizer(lambda: optimizers.SGD(0.2)), 1001)
    close(seen[0], STEP44_PRINTED[0], 1e-15)
    for got, printed in zip(seen, STEP44_PRINTED, strict=False):
        close(got, printed, 1e-7)
    momentum = _with_optimizer(lambda: optimizers.MomentumSGD(0.2))
    _, seen = _train(lambda: MLP((10, 1)), momentum)
    for got, printed in zip(seen, [0.8165178492839196, 0.07743134827996007, 0.07544895146731473]):
        close(got, printed, 1e-6)


def test_step47_softmax_and_cross_entropy():
    np.random.seed(0)

    def softmax1d(x):
        x = as_variable(x)
        y = F.exp(x)
        return y / F.sum(y)

    model = MLP((10, 3))
    y = model(Variable(np.array([[0.2, -0.4]])))
    p = softmax1d(y)
    printed_y = [-0.6150577766168602, -0.4279016132565948, 0.3173328911362235]
    printed_p = [0.21068638554516403, 0.2540489250380199, 0.5352646894168159]
    for got, want in zip(y.data.ravel(), printed_y, strict=True):
        close(got, want, 1e-15)
    for got, want in zip(p.data.ravel(), printed_p, strict=True):
        close(got, want, 1e-15)
    x = np.array([[0.2, -0.4], [0.3, 0.5], [1.3, -3.2], [2.1, 0.3]])
    t = np.array([2, 0, 1, 0])
    y = model(x)
    p = F.softmax_simple(y)
    close(p.data[3, 2], 0.5452426252004379, 1e-15)
    loss = F.softmax_cross_entropy_simple(y, t)
    loss.backward()
    close(loss.data, 1.496744252405306, 1e-15)
    close(F.softmax_cross_entropy(y, t).data, 1.4967442524053058, 1e-15)


# --------------------------------------------------------------------------- spiral trainings

# "epoch %d, loss %.2f" of steps 48 and 49 (the same run): DeZero's unrounded averages.
SPIRAL_EPOCH_LOSSES = [
    1.1269415140151977, 1.0461450278759004, 0.9506376564502717, 0.9194058120250702,
    0.8685604572296143, 0.8927308797836304, 0.8395709037780762, 0.7816296279430389,
    0.7966280400753021, 0.7900152444839478,
]  # fmt: skip


def _spiral_epochs(batches_of, epochs=10):
    model = MLP((10, 3))
    optimizer = optimizers.SGD(1.0).setup(model)
    losses = []
    for _ in range(epochs):
        index = np.random.permutation(300)
        sum_loss = 0
        for i in range(10):
            batch_x, batch_t = batches_of(index[i * 30 : (i + 1) * 30])
            loss = F.softmax_cross_entropy(model(batch_x), batch_t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_loss += float(loss.data) * len(batch_t)
        losses.append(sum_loss / 300)
    return losses


def test_step48_spiral_minibatches():
    x, t = dezero.datasets.get_spiral(train=True)  # reseeds NumPy's generator, as DeZero's
    losses = _spiral_epochs(lambda bi: (x[bi], t[bi]))
    # float32 arithmetic (the spiral points and the weights): the same to float32 rounding
    for got, printed in zip(losses, SPIRAL_EPOCH_LOSSES, strict=True):
        close(got, printed, 1e-6)
    assert [f"{v:.2f}" for v in losses[:3]] == ["1.13", "1.05", "0.95"]  # the book's print


def test_step49_dataset_class():
    train_set = dezero.datasets.Spiral(train=True)

    def batches_of(batch_index):
        batch = [train_set[i] for i in batch_index]
        return np.array([e[0] for e in batch]), np.array([e[1] for e in batch])

    losses = _spiral_epochs(batches_of)
    for got, printed in zip(losses, SPIRAL_EPOCH_LOSSES, strict=True):
        close(got, printed, 1e-6)


def test_step50_dataloader_and_accuracy():
    train_set = dezero.datasets.Spiral(train=True)
    test_set = dezero.datasets.Spiral(train=False)
    train_loader = DataLoader(train_set, 30)
    test_loader = DataLoader(test_set, 30, shuffle=False)
    model = MLP((10, 3))
    optimizer = optimizers.SGD(1.0).setup(model)
    printed = [  # (train loss, train accuracy, test loss, test accuracy) per epoch
        (1.0944493889808655, 0.4033333333333333, 1.046758782863617, 0.32666666666666666),
        (0.988243168592453, 0.49333333333333335, 0.9728883743286133, 0.43333333333333335),
        (0.9403274893760681, 0.5133333333333333, 0.8965261161327363, 0.6233333333333333),
    ]
    for want in printed:
        sums = [0.0, 0.0, 0.0, 0.0]
        for x, t in train_loader:
            y = model(x)
            loss = F.softmax_cross_entropy(y, t)
            acc = F.accuracy(y, t)
            assert acc.dtype == np.float64  # DeZero's accuracy is float64
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sums[0] += float(loss.data) * len(t)
            sums[1] += float(acc.data) * len(t)
        with dezero.no_grad():
            for x, t in test_loader:
                y = model(x)
                sums[2] += float(F.softmax_cross_entropy(y, t).data) * len(t)
                sums[3] += float(F.accuracy(y, t).data) * len(t)
        for got, w in zip(sums, want, strict=True):
            close(got / 300, w, 1e-6)  # the loader's float32 batches (DeZero: float32 too)


def test_step53_save_and_load_weights(tmp_path):
    # The book trains on MNIST; the round trip is the same with the spiral set.
    np.random.seed(0)
    model = MLP((10, 3))
    x, t = dezero.datasets.get_spiral()
    F.softmax_cross_entropy(model(x), t).backward()
    path = str(tmp_path / "my_mlp.npz")
    model.save_weights(path)
    other = MLP((10, 3))
    other(x)  # made with other random weights
    other.load_weights(path)
    np.testing.assert_array_equal(other(x).data, model(x).data)


# --------------------------------------------------------------------------- stage 5


def test_step54_dropout_and_test_mode():
    x = np.ones(5)
    np.random.seed(0)  # the book's script does not seed: these are its numbers under seed 0
    y = F.dropout(x)
    assert y.data.tolist() == [2.0, 2.0, 2.0, 2.0, 0.0]  # DeZero's under np.random.seed(0)
    np.random.seed(0)
    assert y.data.tolist() == (x * (np.random.rand(5) > 0.5) / 0.5).tolist()
    with dezero.test_mode():
        y = F.dropout(x)
    assert y.data.tolist() == [1.0] * 5


def test_step55_conv_output_size():
    from dezero_xp.utils import get_conv_outsize

    assert (get_conv_outsize(4, 3, 1, 1), get_conv_outsize(4, 3, 1, 1)) == (4, 4)


def test_step57_im2col_and_conv2d_simple():
    x1 = np.random.rand(1, 3, 7, 7)
    assert F.im2col(x1, kernel_size=5, stride=1, pad=0, to_matrix=True).shape == (9, 75)
    x2 = np.random.rand(10, 3, 7, 7)
    assert F.im2col(x2, (5, 5), (1, 1), (0, 0), to_matrix=True).shape == (90, 75)
    x = Variable(np.random.randn(1, 5, 15, 15))
    W = np.random.randn(8, 5, 3, 3)
    y = F.conv2d_simple(x, W, b=None, stride=1, pad=1)
    y.backward()
    assert y.shape == (1, 8, 15, 15) and x.grad.shape == (1, 5, 15, 15)
    # one output pixel by the definition, in plain NumPy
    padded = np.pad(x.data, ((0, 0), (0, 0), (1, 1), (1, 1)))
    np.testing.assert_allclose(y.data[0, 3, 4, 6], np.sum(padded[0, :, 4:7, 6:9] * W[3]))


class SimpleRNN(Model):
    def __init__(self, hidden_size, out_size, cell=L.RNN):
        super().__init__()
        self.rnn = cell(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self):
        self.rnn.reset_state()

    def __call__(self, x):
        return self.fc(self.rnn(x))


def test_step59_rnn_on_the_sine_curve():
    np.random.seed(0)  # the book does not seed; DeZero's numbers under seed 0
    train_set = dezero.datasets.SinCurve(train=True)
    seqlen = len(train_set)
    model = SimpleRNN(100, 1)
    optimizer = optimizers.Adam().setup(model)
    avg = []
    for _ in range(2):
        model.reset_state()
        loss, count = 0, 0
        for x, t in train_set:
            x = x.reshape(1, 1)
            loss += F.mean_squared_error(model(x), t)
            count += 1
            if count % 30 == 0 or count == seqlen:
                model.cleargrads()
                loss.backward()
                loss.unchain_backward()
                optimizer.update()
        avg.append(float(loss.data) / count)
    # DeZero's SinCurve is float64 (ours float32, the dtype of its weights): 1e-4 relative
    close(avg[0], 0.29063800240905263, 1e-4)
    close(avg[1], 0.018004631275422806, 1e-3)


def test_step60_lstm_with_seq_dataloader():
    np.random.seed(0)
    train_set = dezero.datasets.SinCurve(train=True)
    dataloader = SeqDataLoader(train_set, batch_size=30)
    seqlen = len(train_set)
    model = SimpleRNN(100, 1, cell=L.LSTM)
    optimizer = optimizers.Adam().setup(model)
    avg = []
    for _ in range(3):
        model.reset_state()
        loss, count = 0, 0
        for x, t in dataloader:
            loss += F.mean_squared_error(model(x), t)
            count += 1
            if count % 30 == 0 or count == seqlen:
                model.cleargrads()
                loss.backward()
                loss.unchain_backward()
                optimizer.update()
        avg.append(float(loss.data) / count)
    for got, printed in zip(avg, [0.4830282926114202, 0.38310301830344345, 0.29669796497255285]):
        close(got, printed, 1e-4)
