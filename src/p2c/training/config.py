"""The training configuration: one frozen dataclass that the command line maps onto.

The resolved configuration is written as ``config.json`` into the run folder, and a resumed run
checks that the options which shape the networks have not changed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["AMP_MODES", "MIN_IMG_SIZE", "LossWeights", "TrainConfig"]

AMP_MODES = ("auto", "bf16", "fp16", "none")
# The global discriminator halves the image five times, then needs 3x3 left for its last two
# 4x4 convolutions with reflection padding: 96 is the smallest size (a multiple of 16) that fits.
MIN_IMG_SIZE = 96
# Options that change the networks' shapes: a resumed run must keep them.
SHAPE_FIELDS = ("img_size", "ch", "light")


@dataclass(frozen=True)
class LossWeights:
    """photo2cartoon's loss weights (``adv``, ``cycle``, ``identity``, ``cam``, ``faceid``)."""

    adv: float = 1.0
    cycle: float = 50.0
    identity: float = 10.0
    cam: float = 1000.0
    faceid: float = 1.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not value >= 0.0:  # also rejects NaN
                raise ValueError(f"loss weight {field.name} must be >= 0, got {value}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. Paths are strings so the JSON round-trips."""

    data_dir: str
    out_dir: str
    iterations: int = 100_000
    batch_size: int = 1
    img_size: int = 256
    ch: int = 32
    light: bool = True
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 1e-4
    lr_decay: bool = True  # linear decay to 0 over the second half, as photo2cartoon
    weights: LossWeights = LossWeights()
    faceid_weights: str | None = None  # None: the Face ID network's shipped default
    pretrained: str | None = None
    resume: bool = False
    # A slice state (p2c.training.slice_state) to continue from on a fresh machine: networks, step
    # and RNGs; both Adams restart, with the learning rate ramped up over warmup_steps.
    resume_from: str | None = None
    slice_state: str | None = None  # write a slice state here when the run (or slice) ends
    slice_generators: str = "fp32"  # or fp16: a smaller slice state (see p2c.training.slice_state)
    warmup_steps: int = 200
    device: str = "auto"
    amp: str = "auto"  # auto: bf16 on CUDA GPUs that support it, none elsewhere
    compile: bool = False
    seed: int = 0
    num_workers: int = 2
    log_every: int = 10
    sample_every: int = 1000
    save_every: int = 1000
    export_every: int = 0  # 0: export the A->B generator only when training ends
    keep_checkpoints: int = 3
    compact_checkpoints: bool = False
    sample_rows: int = 4

    def __post_init__(self) -> None:
        positive = ("iterations", "batch_size", "log_every", "sample_every", "save_every", "keep_checkpoints")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("num_workers", "export_every", "seed", "sample_rows", "warmup_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.img_size < MIN_IMG_SIZE or self.img_size % 16:
            raise ValueError(f"img_size must be a multiple of 16 and >= {MIN_IMG_SIZE}, got {self.img_size}")
        if self.ch < 4 or self.ch % 4:
            raise ValueError(f"ch must be a positive multiple of 4, got {self.ch}")
        if not 0.0 < self.lr < 1.0:
            raise ValueError(f"lr must be in (0, 1), got {self.lr}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.slice_generators not in ("fp32", "fp16"):
            raise ValueError(f"slice_generators must be fp32 or fp16, got {self.slice_generators!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.resume and self.resume_from:
            raise ValueError(
                "resume and resume_from exclude each other: continue from a checkpoint or a slice state"
            )
        if not self.data_dir or not self.out_dir:
            raise ValueError("data_dir and out_dir must be non-empty paths")

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["betas"] = list(self.betas)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training options: {', '.join(unknown)}")
        values = dict(data)
        if "weights" in values and isinstance(values["weights"], dict):
            values["weights"] = LossWeights(**values["weights"])
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(**values)
