"""``p2c-export``: write the generator as an ONNX model (FP32 or FP16), a TensorRT engine, or an
AOTInductor package (``--format aoti``: ``OUT.pt2`` plus ``OUT.pt2.json``, compiled for this machine's
device and torch version; it also fills the engine cache, so later starts with the same weights load it).

p2c-export photo2cartoon_weights.pt --format onnx --precision fp16 p2c_fp16.onnx
p2c-export photo2cartoon_weights.pt p2c.pt2 --format aoti --precision auto

From a p2c-train checkpoint also the engine's own weights (``--format safetensors``: the A->B
generator, FP16 safetensors + JSON) or a slice state (``--format slice-state``, <= 60 MB, the
generators at ``--precision``); both are done by :mod:`p2c.training`.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

from p2c.cli import run_command
from p2c.errors import InvalidInputError, OutputError

__all__ = ["export", "main"]

log = logging.getLogger(__name__)

TRAINING_FORMATS = ("safetensors", "slice-state")  # written by p2c.training from a checkpoint


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2c-export",
        description=(
            "Export the cartoon generator for deployment: ONNX (FP32/FP16), a TensorRT engine or an "
            "AOTInductor package."
        ),
    )
    parser.add_argument(
        "weights", type=Path, help="photo2cartoon .pt, p2c .safetensors, or an FP32 .onnx (to FP16)"
    )
    parser.add_argument(
        "out", type=Path, help="output file (.onnx, .engine/.ep for TensorRT, .pt2 for AOTInductor)"
    )
    parser.add_argument(
        "--format",
        choices=("onnx", "tensorrt", "aoti", *TRAINING_FORMATS),
        default="onnx",
        help="default: onnx; safetensors and slice-state take a p2c-train checkpoint",
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "fp16", "bf16", "auto"),
        default="fp32",
        help="default: fp32; aoti also takes bf16 and auto (fp16 on CUDA, fp32 on the CPU, as the engine)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.add_argument(
        "--static-batch", action="store_true", help="fix the ONNX batch axis at 1, like the released ONNX"
    )
    parser.add_argument(
        "--device", default="auto", help="TensorRT, aoti: the device to build for (default: auto)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    return parser


def _export_onnx(weights: Path, out: Path, precision: str, opset: int, dynamic_batch: bool) -> Path:
    from p2c.models.onnx import convert_to_fp16, export_onnx, onnx_signature
    from p2c.models.weights import detect_format, load_generator

    if detect_format(weights) == "onnx":
        if precision == "fp32" or onnx_signature(weights).dtype != "float32":
            raise InvalidInputError(
                f"{weights} is already an ONNX model; p2c-export converts an FP32 ONNX to FP16 only "
                "(--precision fp16), or exports .pt / .safetensors weights"
            )
        return convert_to_fp16(weights, out)
    generator = load_generator(weights)
    if precision == "fp32":
        return export_onnx(generator, out, opset=opset, dynamic_batch=dynamic_batch)
    with tempfile.TemporaryDirectory(dir=out.parent) as folder:
        fp32 = export_onnx(generator, Path(folder) / "fp32.onnx", opset=opset, dynamic_batch=dynamic_batch)
        return convert_to_fp16(fp32, out)


def export(
    weights: Path,
    out: Path,
    fmt: str = "onnx",
    precision: str = "fp32",
    opset: int = 17,
    dynamic_batch: bool = True,
    device: str = "auto",
) -> Path:
    """Write ``weights`` as ``fmt`` at ``precision`` to ``out``; returns ``out``."""
    out = Path(out).expanduser()
    if not out.parent.is_dir():
        raise OutputError(f"cannot write {out}: folder {out.parent} does not exist; create it first")
    if out.is_dir():
        raise OutputError(f"cannot write {out}: it is a folder; give a file name such as {out / 'p2c.onnx'}")
    if fmt == "aoti":
        from p2c.engine.base import EngineConfig
        from p2c.engine.inductor import build_package_file

        config = EngineConfig(backend="inductor", precision=precision, device=device)
        return build_package_file(Path(weights), out, config)
    if precision not in ("fp32", "fp16"):
        raise InvalidInputError(f"--format {fmt} exports fp32 or fp16, not {precision}")
    if fmt == "onnx":
        return _export_onnx(Path(weights), out, precision, opset, dynamic_batch)
    if fmt in TRAINING_FORMATS:
        from p2c.training.export import export_training_format

        return export_training_format(Path(weights), out, fmt, precision)
    from p2c.engine.tensorrt import build_engine_file

    return build_engine_file(Path(weights), out, precision, device)


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    path = export(
        args.weights, args.out, args.format, args.precision, args.opset, not args.static_batch, args.device
    )
    size_mb = path.stat().st_size / 1e6
    precision = "fp16" if args.format == "safetensors" else args.precision  # the engine's format is FP16
    print(f"wrote {path} ({args.format}, {precision}, {size_mb:.1f} MB)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv, prog="p2c-export")


if __name__ == "__main__":
    raise SystemExit(main())
