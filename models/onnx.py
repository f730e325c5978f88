"""ONNX export of the generator, and what p2c needs to know about an ONNX file before running it.

Exports use the names of photo2cartoon's released ONNX (input ``"input"``, output ``"output"``) and, by
default, a dynamic batch axis. The TorchScript exporter (``dynamo=False``) is used: the newer exporter
needs ``onnxscript``, which p2c does not depend on.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from p2c.errors import WeightsError
from p2c.models.generator import CartoonOnly, ResnetGenerator

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "OnnxSignature", "export_onnx", "onnx_signature"]

log = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAME = "output"
_FLOAT_TYPES = {1: "float32", 10: "float16"}  # onnx.TensorProto.FLOAT, FLOAT16


@dataclass(frozen=True)
class OnnxSignature:
    """The one image input and output of a generator ONNX model."""

    input_name: str
    output_name: str
    batch: int | None  # None: dynamic batch axis
    size: int | None  # None: dynamic spatial size
    dtype: str  # "float32" or "float16"


def _static_dim(dim: object) -> int | None:
    value = getattr(dim, "dim_value", 0)
    return int(value) if value > 0 else None


def onnx_signature(path: str | Path) -> OnnxSignature:
    """Read the input/output of ``path``; WeightsError unless it maps N x 3 x S x S images to images."""
    import onnx

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:
        raise WeightsError(
            f"{path} is not a readable ONNX file ({error}); pass a generator .onnx export"
        ) from error
    graph = model.graph
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    expected = "one input and one output of shape N x 3 x S x S (a photo2cartoon generator export)"
    if len(inputs) != 1 or len(graph.output) != 1:
        raise WeightsError(
            f"{path} is an ONNX model with {len(inputs)} inputs and {len(graph.output)} outputs, "
            f"expected {expected}"
        )
    source, target = inputs[0].type.tensor_type, graph.output[0].type.tensor_type
    dims = list(source.shape.dim)
    if len(dims) != 4 or _static_dim(dims[1]) not in (3, None) or source.elem_type not in _FLOAT_TYPES:
        raise WeightsError(
            f"{path} is an ONNX model whose input is not a float N x 3 x S x S image batch, "
            f"expected {expected}"
        )
    if len(target.shape.dim) not in (0, 4) or target.elem_type not in _FLOAT_TYPES:
        raise WeightsError(
            f"{path} is an ONNX model whose output is not a float image batch, expected {expected}"
        )
    return OnnxSignature(
        input_name=inputs[0].name,
        output_name=graph.output[0].name,
        batch=_static_dim(dims[0]),
        size=_static_dim(dims[2]),
        dtype=_FLOAT_TYPES[source.elem_type],
    )


def _fix_output_shape(model: object, size: int, dynamic_batch: bool) -> None:
    """State the output shape plainly: the TorchScript exporter's shape inference garbles it after Resize."""
    output = model.graph.output[0].type.tensor_type  # type: ignore[attr-defined]
    output.shape.ClearField("dim")
    for value in (None if dynamic_batch else 1, 3, size, size):
        dim = output.shape.dim.add()
        if value is None:
            dim.dim_param = "batch"
        else:
            dim.dim_value = value


def export_onnx(
    generator: ResnetGenerator | CartoonOnly, path: str | Path, opset: int = 17, dynamic_batch: bool = True
) -> Path:
    """Export the generator's image output to ``path`` (FP32, CPU trace), written atomically."""
    import onnx

    module = generator if isinstance(generator, CartoonOnly) else CartoonOnly(generator)
    module = module.float().cpu().eval()
    size = module.generator.config.img_size
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise WeightsError(f"cannot export to {path}: folder {path.parent} does not exist; create it first")
    dynamic_axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            # The exporter warns about constant folding of Slice ops in ReflectionPad; they are harmless.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter(
                "ignore", DeprecationWarning
            )  # the TorchScript exporter is chosen on purpose
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                module,
                (torch.zeros(1, 3, size, size),),
                str(temp),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        model = onnx.load(str(temp))
        _fix_output_shape(model, size, dynamic_batch)
        onnx.save(model, str(temp))
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    log.info("exported %s generator to %s (opset %d)", module.generator.config, path, opset)
    return path
