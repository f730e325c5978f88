"""Export from training: the A->B generator in the engine's format (FP16 safetensors + JSON model
config), or a checkpoint's compact slice state. ``p2c-export --format safetensors|slice-state``."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import torch

from p2c.errors import InvalidInputError, WeightsError
from p2c.models.architectures import DEFAULT_ARCH, Generator, arch_of, build_generator
from p2c.stream.alignment import CROP_SIZE
from p2c.training import checkpoint as ckpt

__all__ = ["export_checkpoint", "export_generator", "export_training_format", "slice_state_from_checkpoint"]

logger = logging.getLogger(__name__)


def _at_crop_size(generator: Generator) -> Generator:
    """The same weights declared at the inference crop size (256), when the network allows it.

    The engine feeds 256x256 crops and checks the model's ``img_size``. A fully convolutional
    generator's weights do not depend on ``img_size`` (a light photo2cartoon one's style MLP reads
    globally pooled features; the compact one pools only in its CAM head), so a model trained at
    another size can run on 256 crops; it was not trained at that scale, which is logged.
    """
    config = generator.config
    if config.img_size == CROP_SIZE or config.fixed_input_size is not None:
        return generator
    logger.warning(
        "the generator was trained on %dx%d crops; it is exported for the engine's %dx%d crops",
        config.img_size,
        config.img_size,
        CROP_SIZE,
        CROP_SIZE,
    )
    resized = build_generator(arch_of(config), replace(config, img_size=CROP_SIZE))
    resized.load_state_dict(generator.state_dict(), strict=True)
    return resized


def export_generator(generator: Generator, target: Path) -> Path:
    """Write ``target`` (.safetensors) and its JSON sidecar with ``p2c.models.weights.save_generator``."""
    from p2c.models.weights import save_generator

    target.parent.mkdir(parents=True, exist_ok=True)
    was_training = generator.training
    save_generator(_at_crop_size(generator).eval(), target, dtype=torch.float16)
    generator.train(was_training)
    logger.info("exported the generator to %s", target)
    return target


def _generator_from_state(state: dict[str, torch.Tensor], config: dict[str, object] | None) -> Generator:
    """The generator a checkpoint's state dict holds: built from the run's config (a p2c-train
    checkpoint), else (the released file carries none) as its keys and shapes say."""
    from p2c.models.weights import config_from_state_dict
    from p2c.training.gan import training_generator_config

    if config is not None:
        arch = str(config.get("arch", DEFAULT_ARCH))
        model_config = training_generator_config(
            arch,
            int(config["ch"]),  # type: ignore[call-overload]
            int(config["img_size"]),  # type: ignore[call-overload]
            bool(config["light"]),
        )
    else:
        model_config = config_from_state_dict(state)
        arch = arch_of(model_config)
    generator = build_generator(arch, model_config)
    generator.load_state_dict(state, strict=True)
    return generator


def export_checkpoint(source: Path, target: Path, key: str = "genA2B") -> Path:
    """Export ``key`` from a p2c-train checkpoint or photo2cartoon_weights.pt to ``target``."""
    payload = ckpt.read_checkpoint(source)
    if key not in payload:
        raise WeightsError(
            f"{source} holds no {key} generator; pass a p2c-train checkpoint or photo2cartoon_weights.pt"
        )
    config = payload.get("config") if isinstance(payload.get("config"), dict) else None
    try:
        generator = _generator_from_state(payload[key], config)
    except (KeyError, ValueError, RuntimeError) as error:
        kind = str(config.get("arch", DEFAULT_ARCH)) if config is not None else "known"
        raise WeightsError(f"{source}: {key} is not a {kind} generator state dict") from error
    if target.suffix != ".safetensors":
        target = target.with_suffix(".safetensors")
    return export_generator(generator, target)


def slice_state_from_checkpoint(source: Path, target: Path, generators: str = "fp32") -> Path:
    """Write the slice state (<= 60 MB) of a p2c-train checkpoint; ``generators``: fp32 or fp16."""
    from p2c.training.slice_state import write_slice_state

    payload = ckpt.read_checkpoint(source)
    if "optimizers" not in payload:
        raise InvalidInputError(f"{source} is not a p2c-train checkpoint (it has no training state)")
    size = write_slice_state(target, payload, generators=generators)
    logger.info("slice state %s (%.1f MB), step %d", target, size / 1e6, payload["step"])
    return target


def export_training_format(source: Path, target: Path, fmt: str, precision: str = "fp32") -> Path:
    """``p2c-export``'s training formats: ``safetensors`` (the A->B generator) or ``slice-state``."""
    if fmt == "safetensors":
        return export_checkpoint(source, target)
    if fmt == "slice-state":
        return slice_state_from_checkpoint(source, target, generators=precision)
    raise ValueError(f"unknown training export format {fmt!r}; expected safetensors or slice-state")
