"""The cartoon-ness gauge's network: a small CNN that gives P(cartoon) for an image.

:class:`CartoonGauge` takes what every p2c network takes (N x 3 x H x W RGB in [-1, 1], any size),
resizes it to ``input_size`` (bilinear with antialiasing), runs a few strided convolutions with
batch norm and ReLU, pools each channel globally (mean and max) and returns one probability per
image. Its weights are ``safetensors`` with a JSON beside them holding the :class:`GaugeConfig`
and the record of the fit (``recipes/fit_gauge.py``); the fitted copy ships in this package.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from p2c.errors import InputNotFoundError, InvalidInputError, WeightsError
from p2c.files import atomic_path, atomic_write

__all__ = [
    "GAUGE_FORMAT",
    "CartoonGauge",
    "GaugeConfig",
    "default_gauge_path",
    "load_gauge",
    "read_gauge_record",
    "save_gauge",
]

logger = logging.getLogger(__name__)

GAUGE_FORMAT = "p2c-cartoon-gauge/1"
_DEFAULT_PATH = Path(__file__).resolve().parent / "cartoon_gauge.safetensors"


@dataclass(frozen=True)
class GaugeConfig:
    """Constructor arguments of :class:`CartoonGauge`: input side and the width of each conv layer."""

    input_size: int = 128
    channels: tuple[int, ...] = (16, 32, 64, 96, 128)

    def __post_init__(self) -> None:
        if self.input_size < 16:
            raise ValueError(f"input_size must be >= 16, got {self.input_size}")
        if not self.channels or any(c < 1 for c in self.channels):
            raise ValueError(f"channels must be positive widths, got {self.channels}")
        if self.input_size >> len(self.channels) < 1:
            raise ValueError(
                f"{len(self.channels)} stride-2 layers leave nothing of a {self.input_size} px input"
            )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, content: dict[str, Any]) -> GaugeConfig:
        return cls(input_size=int(content["input_size"]), channels=tuple(int(c) for c in content["channels"]))


class CartoonGauge(nn.Module):
    """N x 3 x H x W in [-1, 1] -> N probabilities that each image is a cartoon."""

    def __init__(self, config: GaugeConfig | None = None) -> None:
        super().__init__()
        self.config = config or GaugeConfig()
        layers: list[nn.Module] = []
        previous = 3
        for width in self.config.channels:
            layers += [
                nn.Conv2d(previous, width, kernel_size=3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            previous = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * previous, 1)

    @property
    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The logit of P(cartoon) per image (N)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise InvalidInputError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
        size = self.config.input_size
        x = images.float()
        if x.shape[2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        x = self.features(x)
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        return self.head(pooled).squeeze(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(images))


def default_gauge_path() -> Path:
    """The fitted gauge that ships in this package."""
    return _DEFAULT_PATH


def sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def save_gauge(gauge: CartoonGauge, path: str | Path, record: dict[str, Any] | None = None) -> Path:
    """Write ``X.safetensors`` (FP32 weights) and ``X.json`` (config and ``record``); returns the first."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise InvalidInputError(f"gauge weights are written as .safetensors, got {path.name}")
    tensors = {name: t.detach().float().cpu().contiguous() for name, t in gauge.state_dict().items()}
    tensors = {name: t for name, t in tensors.items() if not name.endswith("num_batches_tracked")}
    meta = {"format": GAUGE_FORMAT, "config": gauge.config.to_dict(), "record": record or {}}
    with atomic_write(sidecar(path)) as stream:
        stream.write(json.dumps(meta, indent=2) + "\n")
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata={"format": GAUGE_FORMAT})
    return path


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputNotFoundError(f"gauge weights {path} do not exist: fit them with recipes/fit_gauge.py")
    try:
        meta = json.loads(sidecar(path).read_text(encoding="utf-8"))
        if meta.get("format") != GAUGE_FORMAT:
            raise ValueError(f"format tag {meta.get('format')!r}, expected {GAUGE_FORMAT!r}")
        GaugeConfig.from_dict(meta["config"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WeightsError(
            f"{sidecar(path)} is not a cartoon-gauge config ({error}); refit the gauge"
        ) from error
    return meta


def read_gauge_record(path: str | Path | None = None) -> dict[str, Any]:
    """The fit's record (seed, data, epochs, held-out figures) kept beside the weights."""
    return dict(_read_meta(Path(path) if path else _DEFAULT_PATH).get("record", {}))


def load_gauge(path: str | Path | None = None, device: str | torch.device = "cpu") -> CartoonGauge:
    """The fitted gauge (default: the one in this package), in eval mode and frozen."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path) if path else _DEFAULT_PATH
    meta = _read_meta(path)
    gauge = CartoonGauge(GaugeConfig.from_dict(meta["config"]))
    expected = {name for name in gauge.state_dict() if not name.endswith("num_batches_tracked")}
    try:
        state = load_file(str(path), device="cpu")
        if set(state) != expected:
            raise ValueError(f"{len(expected ^ set(state))} tensor names differ from the config's network")
        gauge.load_state_dict(state, strict=False)  # num_batches_tracked is not stored
    except (OSError, ValueError, RuntimeError, SafetensorError) as error:
        raise WeightsError(f"{path} does not hold the weights its config describes ({error})") from error
    logger.debug("cartoon gauge from %s", path)
    return gauge.to(device).eval().requires_grad_(False)
