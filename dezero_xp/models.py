"""Models: Layers that are whole networks (DeZero's ``dezero.models``).

- :class:`Model`: a Layer with :meth:`Model.plot` (the computation graph as an image).
- :class:`Sequential`, :class:`MLP`.
- :class:`VGG16` and :class:`ResNet` (:class:`ResNet50`, :class:`ResNet101`, :class:`ResNet152`,
  built from :class:`BuildingBlock`, :class:`BottleneckA`, :class:`BottleneckB`), as in DeZero.

Pretrained weights: ``pretrained=True`` fetches DeZero's published file through the download
cache (``dezero_xp._download.get_file``: the folders of ``DEZERO_XP_DATA_DIR``, then the cache,
then the network); ``pretrained="path/to/vgg16.npz"`` loads a local file. A missing file raises
an error naming it, its URL and where to put it.

May import: the standard library, dezero_xp.backend, dezero_xp._download, dezero_xp.visualize,
dezero_xp.functions and dezero_xp.layers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import dezero_xp.functions as F
import dezero_xp.layers as L
from dezero_xp._download import DownloadError, get_file
from dezero_xp.backend import get_backend
from dezero_xp.layers import Layer
from dezero_xp.visualize import plot_dot_graph

if TYPE_CHECKING:
    from dezero_xp.core import Variable
    from dezero_xp.typing import DeviceLike, DTypeLike, VariableLike

__all__ = [
    "MLP",
    "VGG16",
    "BottleneckA",
    "BottleneckB",
    "BuildingBlock",
    "Model",
    "ResNet",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "Sequential",
    "SqueezeNet",
]


class Model(Layer):
    """Base of networks: a Layer that can draw its computation graph."""

    def plot(self, *inputs: Any, to_file: str = "model.png") -> Any:
        """Run ``forward(*inputs)`` and render the graph behind the output to ``to_file``.

        Needs Graphviz's ``dot`` program.
        """
        y = self.forward(*inputs)
        return plot_dot_graph(y, verbose=True, to_file=to_file)


class Sequential(Model):
    """Calls its layers one after the other: ``Sequential(L.Linear(10), F.relu, ...)``.

    Plain functions (such as ``F.relu``) may be given between layers.
    """

    def __init__(self, *layers: Layer | Callable[[Any], Any]) -> None:
        super().__init__()
        self.layers = []
        for i, layer in enumerate(layers):
            if isinstance(layer, Layer):
                setattr(self, "l" + str(i), layer)
            self.layers.append(layer)

    def forward(self, x: VariableLike) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x


class MLP(Model):
    """Fully connected layers of the given output sizes with ``activation`` between them."""

    def __init__(
        self,
        fc_output_sizes: Iterable[int],
        activation: Callable[[Any], Any] = F.sigmoid,
        dtype: DTypeLike = "float32",
        device: DeviceLike | None = None,
    ) -> None:
        super().__init__(device=device)
        if isinstance(fc_output_sizes, (str, bytes)) or not hasattr(fc_output_sizes, "__iter__"):
            raise TypeError(
                f"MLP: fc_output_sizes must be a sequence of ints, got {fc_output_sizes!r:.40}"
            )
        fc_output_sizes = list(fc_output_sizes)
        if not fc_output_sizes:
            raise ValueError("MLP: fc_output_sizes is empty; give at least one layer size")
        if not callable(activation):
            raise TypeError(f"MLP: activation must be callable, got {activation!r:.40}")
        self.activation = activation
        self.layers = []
        for i, out_size in enumerate(fc_output_sizes):
            try:
                layer = L.Linear(out_size, dtype=dtype, device=device)
            except (TypeError, ValueError) as exc:  # name the MLP and the layer, not only Linear
                if type(exc) not in (TypeError, ValueError):
                    raise  # e.g. DeviceUnavailableError: keep its type
                raise type(exc)(
                    f"MLP: layer l{i} (fc_output_sizes[{i}]={out_size!r}): {exc}"
                ) from None
            setattr(self, "l" + str(i), layer)
            self.layers.append(layer)

    def forward(self, x: VariableLike) -> Variable:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


# --------------------------------------------------------------------------- pretrained weights


def _pretrained_path(
    pretrained: bool | str | os.PathLike[str] | None, url: str, model_name: str
) -> str | None:
    """The weights file to load: None (random init), the cached/downloaded file, or a path."""
    if pretrained is None or pretrained is False:
        return None
    file_name = url.rsplit("/", 1)[-1]
    if pretrained is True:
        try:
            return get_file(url)
        except DownloadError as exc:
            raise DownloadError(
                f"{model_name}: pretrained weights {file_name!r} are not available: {exc} "
                f"Or pass the file directly: {model_name}(pretrained='path/to/{file_name}')."
            ) from exc
    path = os.fspath(pretrained)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{model_name}: pretrained weights file {path!r} does not exist; download {url} "
            f"and pass its path, or use pretrained=True to look in the download cache"
        )
    return path


# --------------------------------------------------------------------------- VGG16


class VGG16(Model):
    """VGG-16 (13 convolutions, 3 fully connected layers), 1000 classes."""

    WEIGHTS_PATH = "https://github.com/koki0702/dezero-models/releases/download/v0.1/vgg16.npz"

    def __init__(self, pretrained: bool | str | os.PathLike[str] = False) -> None:
        super().__init__()
        channels = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
        convs_per_block = {1: 2, 2: 2, 3: 3, 4: 3, 5: 3}
        self._conv_names = []
        for block, n_convs in convs_per_block.items():
            names = []
            for j in range(1, n_convs + 1):
                name = f"conv{block}_{j}"
                setattr(self, name, L.Conv2d(channels[block], kernel_size=3, stride=1, pad=1))
                names.append(name)
            self._conv_names.append(names)
        self.fc6 = L.Linear(4096)
        self.fc7 = L.Linear(4096)
        self.fc8 = L.Linear(1000)
        path = _pretrained_path(pretrained, VGG16.WEIGHTS_PATH, "VGG16")
        if path is not None:
            self.load_weights(path)

    def forward(self, x: VariableLike) -> Variable:
        for names in self._conv_names:
            for name in names:
                x = F.relu(getattr(self, name)(x))
            x = F.pooling(x, 2, 2)
        x = F.reshape(x, (x.shape[0], -1))
        x = F.dropout(F.relu(self.fc6(x)))
        x = F.dropout(F.relu(self.fc7(x)))
        return self.fc8(x)

    @staticmethod
    def preprocess(
        image: Any, size: tuple[int, int] | None = (224, 224), dtype: DTypeLike = "float32"
    ) -> Any:
        """A PIL image as a (3, H, W) host (NumPy) array: BGR, ImageNet means subtracted."""
        xp = get_backend("cpu").xp  # host-side preprocessing of an image file
        image = image.convert("RGB")
        if size:
            image = image.resize(size)
        image = xp.asarray(image, dtype=dtype)
        image = image[:, :, ::-1]
        image = image - xp.asarray([103.939, 116.779, 123.68], dtype=dtype)
        return xp.permute_dims(image, (2, 0, 1))


class SqueezeNet(Model):
    """DeZero's placeholder: it has no layers or weights in DeZero either.

    Making one works (as in DeZero); calling it raises NotImplementedError, where DeZero's
    silently returns None.
    """

    def __init__(self, pretrained: bool | str | os.PathLike[str] = False) -> None:
        super().__init__()
        self.pretrained = pretrained

    def forward(self, x: VariableLike) -> Variable:
        raise NotImplementedError(
            "SqueezeNet is a placeholder (in DeZero too): it has no layers or weights; use "
            "VGG16 or ResNet50/101/152, or build it from dezero_xp.layers"
        )


# --------------------------------------------------------------------------- ResNet


class ResNet(Model):
    """ResNet-50/101/152 (MSRA variant, bottleneck blocks with batch normalization)."""

    WEIGHTS_PATH = "https://github.com/koki0702/dezero-models/releases/download/v0.1/resnet{}.npz"
    BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}

    def __init__(
        self, n_layers: int = 152, pretrained: bool | str | os.PathLike[str] = False
    ) -> None:
        super().__init__()
        if n_layers not in self.BLOCKS:
            raise ValueError(
                f"The n_layers argument should be either 50, 101, or 152, but {n_layers} was given."
            )
        block = self.BLOCKS[n_layers]
        self.conv1 = L.Conv2d(64, 7, 2, 3)
        self.bn1 = L.BatchNorm()
        self.res2 = BuildingBlock(block[0], 64, 64, 256, 1)
        self.res3 = BuildingBlock(block[1], 256, 128, 512, 2)
        self.res4 = BuildingBlock(block[2], 512, 256, 1024, 2)
        self.res5 = BuildingBlock(block[3], 1024, 512, 2048, 2)
        self.fc6 = L.Linear(1000)
        path = _pretrained_path(
            pretrained, ResNet.WEIGHTS_PATH.format(n_layers), f"ResNet{n_layers}"
        )
        if path is not None:
            self.load_weights(path)

    def forward(self, x: VariableLike) -> Variable:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.pooling(x, kernel_size=3, stride=2)
        x = self.res2(x)
        x = self.res3(x)
        x = self.res4(x)
        x = self.res5(x)
        x = _global_average_pooling_2d(x)
        return self.fc6(x)


class ResNet152(ResNet):
    def __init__(self, pretrained: bool | str | os.PathLike[str] = False) -> None:
        super().__init__(152, pretrained)


class ResNet101(ResNet):
    def __init__(self, pretrained: bool | str | os.PathLike[str] = False) -> None:
        super().__init__(101, pretrained)


class ResNet50(ResNet):
    def __init__(self, pretrained: bool | str | os.PathLike[str] = False) -> None:
        super().__init__(50, pretrained)


def _global_average_pooling_2d(x: VariableLike) -> Variable:
    N, C, H, W = x.shape
    h = F.average_pooling(x, (H, W), stride=1)
    return F.reshape(h, (N, C))


class BuildingBlock(Layer):
    """One stage of a ResNet: a BottleneckA then ``n_layers - 1`` BottleneckB."""

    def __init__(
        self,
        n_layers: int | None = None,
        in_channels: int | None = None,
        mid_channels: int | None = None,
        out_channels: int | None = None,
        stride: int | None = None,
        downsample_fb: bool | None = None,
    ) -> None:
        super().__init__()
        # DeZero's None defaults are placeholders: every argument is needed.
        self.a = BottleneckA(in_channels, mid_channels, out_channels, stride, downsample_fb)  # type: ignore[arg-type]
        self._forward = ["a"]
        for i in range(n_layers - 1):  # type: ignore[operator]
            name = f"b{i + 1}"
            setattr(self, name, BottleneckB(out_channels, mid_channels))  # type: ignore[arg-type]
            self._forward.append(name)

    def forward(self, x: VariableLike) -> Variable:
        for name in self._forward:
            x = getattr(self, name)(x)
        return x  # type: ignore[return-value]


class BottleneckA(Layer):
    """Bottleneck with a projection shortcut (changes channels and, with stride, size)."""

    def __init__(
        self,
        in_channels: int | None,
        mid_channels: int,
        out_channels: int,
        stride: int = 2,
        downsample_fb: bool = False,
    ) -> None:
        super().__init__()
        # In the original MSRA ResNet, stride=2 is on the 1x1 convolution;
        # in Facebook's ResNet, on the 3x3 convolution.
        stride_1x1, stride_3x3 = (1, stride) if downsample_fb else (stride, 1)
        self.conv1 = L.Conv2d(mid_channels, 1, stride_1x1, 0, nobias=True)
        self.bn1 = L.BatchNorm()
        self.conv2 = L.Conv2d(mid_channels, 3, stride_3x3, 1, nobias=True)
        self.bn2 = L.BatchNorm()
        self.conv3 = L.Conv2d(out_channels, 1, 1, 0, nobias=True)
        self.bn3 = L.BatchNorm()
        self.conv4 = L.Conv2d(out_channels, 1, stride, 0, nobias=True)
        self.bn4 = L.BatchNorm()

    def forward(self, x: VariableLike) -> Variable:
        h1 = F.relu(self.bn1(self.conv1(x)))
        h1 = F.relu(self.bn2(self.conv2(h1)))
        h1 = self.bn3(self.conv3(h1))
        h2 = self.bn4(self.conv4(x))
        return F.relu(h1 + h2)


class BottleneckB(Layer):
    """Bottleneck with an identity shortcut."""

    def __init__(self, in_channels: int, mid_channels: int) -> None:
        super().__init__()
        self.conv1 = L.Conv2d(mid_channels, 1, 1, 0, nobias=True)
        self.bn1 = L.BatchNorm()
        self.conv2 = L.Conv2d(mid_channels, 3, 1, 1, nobias=True)
        self.bn2 = L.BatchNorm()
        self.conv3 = L.Conv2d(in_channels, 1, 1, 0, nobias=True)
        self.bn3 = L.BatchNorm()

    def forward(self, x: VariableLike) -> Variable:
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return F.relu(h + x)
