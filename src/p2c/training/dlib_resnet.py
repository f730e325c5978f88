"""dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1.dat``) in PyTorch.

The network is the ``anet_type`` of dlib's ``dnn_face_recognition_ex.cpp``: a 7x7 stride-2
convolution, 3x3 stride-2 max pooling, 14 residual units (32, 64, 128, 256, 256 channels), global
average pooling and a 128-output fully connected layer without bias. Its batch norms were folded
into per-channel ``affine`` layers before release, so inference is plain convolution arithmetic.

The file is dlib's own binary serialization, read here directly so that no dlib is needed:

- integers: one control byte (low nibble = number of little-endian magnitude bytes, bit 7 = sign)
  followed by the bytes; floats and doubles: an integer mantissa and an integer exponent
  (value = mantissa * 2**exponent); strings: an integer length and the bytes; bools: ``'0'``/``'1'``.
- tensors: version 2, then num_samples, k, nr, nc, then raw little-endian float32 (version 1 used
  the float encoding above per value).
- a network is written top down: the loss layer's details first, then each layer's version number
  from the top to the input, then, from the input back up, each computational layer's details
  followed by its cached state (bools and empty tensors). Tag and skip layers write only a version.

Two behaviours of dlib matter for exact agreement and are easy to miss:

- a strided ``con`` or pooling layer has no padding (dlib's default padding is ``size/2`` only for
  stride 1), so the 8x8 map of the third down-sampling unit gives a 3x3 residual branch but a 4x4
  pooled shortcut;
- ``add_prev`` adds tensors of different shapes by zero-extending both to the larger size (the
  overlap sits at the top-left corner), which is also how 32 channels join 64.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from p2c.errors import InputNotFoundError, WeightsError

__all__ = [
    "DLIB_CHIP_SIZE",
    "DlibResNet",
    "is_dlib_safetensors",
    "load_dlib_resnet",
    "load_dlib_safetensors",
    "read_dlib_layers",
    "save_dlib_resnet",
]

logger = logging.getLogger(__name__)

DLIB_CHIP_SIZE = 150
EMBEDDING_SIZE = 128

# (output channels, down-sampling?) for each residual unit, input side first: alevel4 .. alevel0.
_UNITS: tuple[tuple[int, bool], ...] = (
    *((32, False),) * 3,
    (64, True),
    *((64, False),) * 3,
    (128, True),
    *((128, False),) * 2,
    (256, True),
    *((256, False),) * 2,
    (256, True),
)
_STEM_CHANNELS = 32

# dlib's special float exponents (float_details in dlib/float_details.h).
_EXP_INF, _EXP_NINF, _EXP_NAN = 32000, 32001, 32002


class _FormatError(ValueError):
    """The bytes do not follow dlib's serialization where the reader expects them to."""


@dataclass
class DlibLayer:
    """One computational layer as dlib wrote it: its type name and whatever it stores."""

    kind: str
    params: np.ndarray | None = None
    shapes: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    ints: dict[str, int] = field(default_factory=dict)


@dataclass
class DlibNetwork:
    """The parts of a serialized network needed to rebuild it: input normalisation and layers."""

    input_kind: str
    mean_rgb: tuple[float, float, float]
    input_size: tuple[int, int]
    loss_kind: str
    layers: list[DlibLayer]  # input side first


class _Reader:
    """Sequential reader for dlib's serialization primitives."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _FormatError(f"unexpected end of file at byte {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def peek(self) -> int:
        if self.pos >= len(self.data):
            raise _FormatError("unexpected end of file")
        return self.data[self.pos]

    def int_(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise _FormatError(f"bad integer control byte 0x{control:02x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def float_(self) -> float:
        mantissa, exponent = self.int_(), self.int_()
        if exponent == _EXP_INF:
            return float("inf")
        if exponent == _EXP_NINF:
            return float("-inf")
        if exponent == _EXP_NAN:
            return float("nan")
        return float(mantissa) * 2.0**exponent

    def string(self) -> str:
        length = self.int_()
        if not 0 <= length <= 1024:
            raise _FormatError(f"implausible string length {length} at byte {self.pos}")
        return self._take(length).decode("latin-1")

    def bool_(self) -> bool:
        char = self._take(1)
        if char not in (b"0", b"1"):
            raise _FormatError(f"bad bool {char!r} at byte {self.pos - 1}")
        return char == b"1"

    def tensor(self) -> np.ndarray:
        version = self.int_()
        shape = tuple(self.int_() for _ in range(4))
        count = int(np.prod(shape))
        if version == 2:
            values = np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)
        elif version == 1:
            values = np.array([self.float_() for _ in range(count)], dtype=np.float32)
        else:
            raise _FormatError(f"unknown tensor version {version} at byte {self.pos}")
        return values.reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.int_()
        if version != 1:
            raise _FormatError(f"unknown alias_tensor version {version} at byte {self.pos}")
        n, k, nr, nc = (self.int_() for _ in range(4))
        return (n, k, nr, nc)


def _read_details(reader: _Reader) -> DlibLayer:
    """One layer's details (layers.h ``serialize`` of con_, affine_, relu_, pools, add_prev_, fc_)."""
    kind = reader.string()
    if kind == "con_4":
        params = reader.tensor()
        names = ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        ints = {name: reader.int_() for name in names}
        shapes = {"filters": reader.alias_tensor(), "biases": reader.alias_tensor()}
        for _ in range(4):  # learning-rate and weight-decay multipliers
            reader.float_()
        return DlibLayer("con", params.ravel(), shapes, ints)
    if kind == "affine_":
        params = reader.tensor()
        shapes = {"gamma": reader.alias_tensor(), "beta": reader.alias_tensor()}
        ints = {}
        if reader.peek() not in b"01":  # newer dlib also writes the mode (0 = conv, 1 = fc)
            ints["mode"] = reader.int_()
        return DlibLayer("affine", params.ravel(), shapes, ints)
    if kind in ("max_pool_2", "avg_pool_2"):
        pool_names = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        return DlibLayer(kind[:-2], ints={name: reader.int_() for name in pool_names})
    if kind == "fc_2":
        ints = {"num_outputs": reader.int_(), "num_inputs": reader.int_()}
        params = reader.tensor()
        shapes = {"weights": reader.alias_tensor(), "biases": reader.alias_tensor()}
        ints["bias_mode"] = reader.int_()
        for _ in range(4):
            reader.float_()
        return DlibLayer("fc", params.ravel(), shapes, ints)
    if kind in ("relu_", "add_prev_"):
        return DlibLayer(kind[:-1])
    raise _FormatError(f"unsupported dlib layer {kind!r}")


def _read_network(reader: _Reader) -> DlibNetwork:
    if reader.int_() != 1:
        raise _FormatError("not a dlib network: expected loss layer version 1")
    loss_kind = reader.string()
    if loss_kind != "loss_metric_2":
        raise _FormatError(f"expected dlib's metric loss layer, found {loss_kind!r}")
    reader.float_()  # margin
    reader.float_()  # distance threshold
    # Versions, top down, until the input layer's name: 2 = add_layer, 1 = tag or skip layer,
    # 3 (or 2) = the add_layer holding the input layer, which comes right before the name.
    versions: list[int] = []
    while reader.peek() == 0x01 and reader.data[reader.pos + 1] <= 3:
        versions.append(reader.int_())
        if len(versions) > 10_000:
            raise _FormatError("no input layer found")
    input_kind = reader.string()
    if input_kind != "input_rgb_image_sized":
        raise _FormatError(f"expected dlib's input_rgb_image_sized, found {input_kind!r}")
    mean_rgb = (reader.float_(), reader.float_(), reader.float_())
    input_size = (reader.int_(), reader.int_())
    if not versions:
        raise _FormatError("no layers above the input")
    input_version = versions.pop()
    layers = [_read_details(reader)]
    _skip_input_layer_state(reader, input_version)
    for version in reversed(versions):
        if version == 1:  # tag or skip layer: nothing but its version
            continue
        layers.append(_read_details(reader))
        _skip_layer_state(reader, version)
    if reader.pos != len(reader.data):
        raise _FormatError(f"{len(reader.data) - reader.pos} bytes left after the network")
    return DlibNetwork(input_kind, mean_rgb, input_size, loss_kind, layers)


def _skip_layer_state(reader: _Reader, version: int) -> None:
    """add_layer's cached state: three bools, x_grad, cached_output (and params_grad in v2)."""
    for _ in range(3):
        reader.bool_()
    for _ in range(3 if version == 2 else 2):
        reader.tensor()


def _skip_input_layer_state(reader: _Reader, version: int) -> None:
    """The input add_layer's state: three bools, three tensors (and sample expansion in v3)."""
    for _ in range(3):
        reader.bool_()
    for _ in range(3):
        reader.tensor()
    if version >= 3:
        reader.int_()


def read_dlib_layers(path: str | Path) -> DlibNetwork:
    """Parse a dlib network file written with ``serialize``; WeightsError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"face-ID weights {path} do not exist: check the path")
    data = path.read_bytes()
    try:
        return _read_network(_Reader(data))
    except _FormatError as error:
        raise WeightsError(
            f"{path} is not dlib's face recognition network file ({error}): pass "
            "dlib_face_recognition_resnet_model_v1.dat"
        ) from None


# --------------------------------------------------------------------------------------------
# The network


class Affine(nn.Module):
    """dlib's affine_ layer in conv mode: a per-channel scale and shift (a folded batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias[:, None, None], x, self.weight[:, None, None])


def _add_zero_extended(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev for mismatched shapes: both zero-extended to the larger one, then added."""
    if a.shape == b.shape:
        return a + b
    shape = [max(sa, sb) for sa, sb in zip(a.shape, b.shape, strict=True)]

    def extend(t: torch.Tensor) -> torch.Tensor:
        pad = (0, shape[3] - t.shape[3], 0, shape[2] - t.shape[2], 0, shape[1] - t.shape[1])
        return F.pad(t, pad)

    return extend(a) + extend(b)


class ResidualUnit(nn.Module):
    """``relu(add_prev(block(x), x))``; a down-sampling unit strides and average-pools x."""

    def __init__(self, in_channels: int, out_channels: int, down: bool) -> None:
        super().__init__()
        self.down = down
        stride, padding = (2, 0) if down else (1, 1)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding)
        self.affine1 = Affine(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.affine2 = Affine(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_zero_extended(branch, shortcut))


class DlibResNet(nn.Module):
    """dlib's face descriptor network; ``forward`` takes dlib's own input, returns raw descriptors.

    Input: N x 3 x 150 x 150 RGB in dlib's pixel units (0..255, float), i.e. a face chip as
    ``dlib.get_face_chip`` cuts it. Output: N x 128 descriptors, not normalised, equal to
    ``face_recognition_model_v1.compute_face_descriptor`` on the same chip.
    """

    def __init__(self, mean_rgb: tuple[float, float, float] = (122.782, 117.001, 104.298)) -> None:
        super().__init__()
        self.register_buffer("mean_rgb", torch.tensor(mean_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        self.conv = nn.Conv2d(3, _STEM_CHANNELS, 7, 2, 0)
        self.affine = Affine(_STEM_CHANNELS)
        units = []
        channels = _STEM_CHANNELS
        for out_channels, down in _UNITS:
            units.append(ResidualUnit(channels, out_channels, down))
            channels = out_channels
        self.units = nn.Sequential(*units)
        self.fc = nn.Linear(channels, EMBEDDING_SIZE, bias=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # dlib's input_rgb_image_sized: (pixel - mean) / 256 per channel.
        x = (pixels - self.get_buffer("mean_rgb")) / 256.0
        x = F.max_pool2d(F.relu(self.affine(self.conv(x))), 3, 2)
        x = self.units(x)
        return self.fc(x.mean(dim=(2, 3)))


def _expected_kinds() -> list[str]:
    """The layer sequence of dlib's anet_type, input side first."""
    kinds = ["con", "affine", "relu", "max_pool"]
    for _, down in _UNITS:
        kinds += ["con", "affine", "relu", "con", "affine"]
        kinds += ["avg_pool", "add_prev", "relu"] if down else ["add_prev", "relu"]
    return [*kinds, "avg_pool", "fc"]


def _copy_con(conv: nn.Conv2d, layer: DlibLayer) -> None:
    filters = layer.shapes["filters"]
    if tuple(conv.weight.shape) != filters or (layer.ints["stride_y"], layer.ints["padding_y"]) != (
        conv.stride[0],
        conv.padding[0],
    ):
        raise _FormatError(f"con layer {filters} does not match {tuple(conv.weight.shape)}")
    count = conv.weight.numel()
    assert layer.params is not None and conv.bias is not None
    conv.weight.data.copy_(torch.from_numpy(layer.params[:count].reshape(filters)))
    conv.bias.data.copy_(torch.from_numpy(layer.params[count : count + conv.out_channels]))


def _copy_affine(affine: Affine, layer: DlibLayer) -> None:
    channels = affine.weight.numel()
    assert layer.params is not None
    if layer.params.size != 2 * channels or layer.ints.get("mode", 0) != 0:
        raise _FormatError(f"affine layer of {layer.params.size} values, expected {2 * channels}")
    affine.weight.data.copy_(torch.from_numpy(layer.params[:channels]))
    affine.bias.data.copy_(torch.from_numpy(layer.params[channels:]))


def _copy_fc(fc: nn.Linear, layer: DlibLayer) -> None:
    outputs, inputs = fc.weight.shape
    assert layer.params is not None
    if (layer.ints["num_outputs"], layer.ints["num_inputs"], layer.ints["bias_mode"]) != (outputs, inputs, 1):
        raise _FormatError(f"fc layer {layer.ints} does not match {inputs} -> {outputs} without bias")
    # dlib multiplies row vectors by a num_inputs x num_outputs matrix; torch stores its transpose.
    fc.weight.data.copy_(torch.from_numpy(layer.params.reshape(inputs, outputs).T.copy()))


def _fill(model: DlibResNet, network: DlibNetwork) -> None:
    kinds = [layer.kind for layer in network.layers]
    if kinds != _expected_kinds():
        raise _FormatError(f"layer sequence differs from dlib's ResNet face descriptor ({len(kinds)} layers)")
    if network.input_size != (DLIB_CHIP_SIZE, DLIB_CHIP_SIZE):
        raise _FormatError(f"input size {network.input_size}, expected 150x150")
    layers = iter(layer for layer in network.layers if layer.kind in ("con", "affine", "fc"))
    _copy_con(model.conv, next(layers))
    _copy_affine(model.affine, next(layers))
    for unit in model.units:
        assert isinstance(unit, ResidualUnit)
        _copy_con(unit.conv1, next(layers))
        _copy_affine(unit.affine1, next(layers))
        _copy_con(unit.conv2, next(layers))
        _copy_affine(unit.affine2, next(layers))
    _copy_fc(model.fc, next(layers))


def load_dlib_resnet(path: str | Path) -> DlibResNet:
    """Read dlib's ``dlib_face_recognition_resnet_model_v1.dat`` into a frozen DlibResNet."""
    network = read_dlib_layers(path)
    model = DlibResNet(network.mean_rgb)
    try:
        _fill(model, network)
    except _FormatError as error:
        raise WeightsError(
            f"{path} is a dlib network but not the ResNet face descriptor ({error}): pass "
            "dlib_face_recognition_resnet_model_v1.dat"
        ) from None
    logger.debug("loaded dlib face descriptor from %s", path)
    return model.eval().requires_grad_(False)


# -- a compact copy: the port's weights as FP16 safetensors (11 MB instead of the .dat's 22 MB) --------

SAFETENSORS_FORMAT = "p2c-dlib-resnet/1"


def save_dlib_resnet(model: DlibResNet, path: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """Write the port's weights to ``path`` (.safetensors), to carry where no package can be installed.

    FP16 moves the 128 descriptor values by about 1e-3 (cosine with the FP32 descriptor > 0.9999 on
    real faces, see docs/default-model.md); the mean stays FP32.
    """
    from safetensors.torch import save_file

    tensors = {
        name: (t if name == "mean_rgb" else t.to(dtype)).detach().cpu().contiguous()
        for name, t in model.state_dict().items()
    }
    target = Path(path)
    save_file(tensors, str(target), metadata={"format": SAFETENSORS_FORMAT})
    return target


def is_dlib_safetensors(path: str | Path) -> bool:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("format") == SAFETENSORS_FORMAT
    except Exception:  # any file safetensors cannot parse is simply not ours
        return False


def load_dlib_safetensors(path: str | Path) -> DlibResNet:
    """Read :func:`save_dlib_resnet`'s file into a frozen FP32 DlibResNet."""
    from safetensors.torch import load_file

    state = {name: tensor.float() for name, tensor in load_file(str(path), device="cpu").items()}
    model = DlibResNet()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise WeightsError(f"{path} does not hold dlib's ResNet face descriptor; re-save it") from error
    return model.eval().requires_grad_(False)
