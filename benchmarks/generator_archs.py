"""The generators the throughput benchmark times: each architecture's random weights (full size or
tiny) and what one face costs it (GFLOP and parameters), for ``benchmarks/generator_throughput.py``."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from p2c.models.architectures import ARCHITECTURES, ModelConfig, build_generator
from p2c.models.compact import CompactConfig
from p2c.models.generator import GeneratorConfig
from p2c.models.weights import load_generator, save_generator

__all__ = ["ARCHS", "FULL_SIZE", "TINY_CONFIGS", "ArchCost", "arch_cost", "random_weights"]

ARCHS = tuple(ARCHITECTURES)
FULL_SIZE = 256
# What --tiny times: small enough that a smoke test of every architecture takes seconds.
TINY_CONFIGS: dict[str, ModelConfig] = {
    "photo2cartoon": GeneratorConfig(ngf=8, img_size=64),
    "compact": CompactConfig(img_size=64, widths=(4, 8, 8), blocks=1),
}


@dataclass
class ArchCost:
    """What one face costs an architecture: its FLOPs (FlopCounterMode: convolutions and matrix
    products, 2 per multiply-add) at ``img_size``, batch 1, and its parameters."""

    arch: str
    config: dict[str, Any]
    img_size: int
    gflop_per_face: float
    params: int
    # The fastest case at batch 1 (numpy in and out), filled in once the arch's timings are done.
    best_at_batch_1: dict[str, Any] = field(default_factory=dict)


def arch_cost(arch: str, weights: Path) -> ArchCost:
    """The GFLOP of one face (batch 1, the generator's ``img_size``) and the parameters of ``weights``.

    The FLOPs are counted on the meta device: shapes only, no arithmetic, so this takes seconds.
    """
    from torch.utils.flop_counter import FlopCounterMode

    generator = load_generator(weights).eval()
    config: ModelConfig = generator.config
    params = sum(p.numel() for p in generator.parameters())
    generator = generator.to("meta")
    face = torch.zeros(1, 3, config.img_size, config.img_size, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        generator(face)
    return ArchCost(arch, config.to_dict(), config.img_size, counter.get_total_flops() / 1e9, params)


def random_weights(arch: str, tiny: bool, folder: Path) -> tuple[Path, int]:
    """A generator of ``arch`` with random weights (seed 0) saved in ``folder``, and its input size:
    the architecture's default config at 256 px, or its :data:`TINY_CONFIGS` entry."""
    torch.manual_seed(0)  # same bytes every run, so the ONNX export and inductor caches are reused
    config = TINY_CONFIGS[arch] if tiny else ARCHITECTURES[arch][1](img_size=FULL_SIZE)
    generator = build_generator(arch, config)
    if arch == "photo2cartoon":
        stem = "tiny" if tiny else "random_full"
    else:
        stem = f"{'tiny' if tiny else 'random'}_{arch}"
    if importlib.util.find_spec("safetensors") is None and config.img_size == 256:
        # A bare GPU image may lack safetensors: a .pt state dict holds a 256 px generator too.
        path = folder / f"{stem}.pt"
        torch.save({"genA2B": generator.state_dict()}, path)
        return path, 256
    return save_generator(generator, folder / stem, dtype=torch.float32), config.img_size
