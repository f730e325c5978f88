"""ONNX export of the generator, and what p2c needs to know about an ONNX file before running it.

Exports use the names of photo2cartoon's released ONNX (input ``"input"``, output ``"output"``) and, by
default, a dynamic batch axis. The TorchScript exporter (``dynamo=False``) is used: the newer exporter
needs ``onnxscript``, which p2c does not depend on.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from p2c.errors import WeightsError
from p2c.files import atomic_path
from p2c.models.architectures import Generator
from p2c.models.generator import CartoonOnly

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "OnnxSignature", "convert_to_fp16", "export_onnx", "onnx_signature"]

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
    generator: Generator | CartoonOnly, path: str | Path, opset: int = 17, dynamic_batch: bool = True
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
    with atomic_path(path) as temp:
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
    log.info("exported %s generator to %s (opset %d)", module.generator.config, path, opset)
    return path


# --- FP16 conversion ------------------------------------------------------------------------------
# Ops whose arithmetic must stay FP32: the normalisation statistics. A layer norm over 128 x 64 x 64
# values divides by N = 524288, which is infinite in FP16, and a sum of that many squares overflows.
_FP32_OPS = {"ReduceMean", "ReduceSum", "ReduceProd", "ReduceSumSquare", "Sqrt", "Pow", "Reciprocal"}
# Inputs that the ONNX spec types as float32 whatever the data type (Resize's roi and scales).
_FLOAT_ONLY_INPUTS = {"Resize": {1, 2}}


def _constants_to_initializers(graph: object) -> None:
    """Turn float ``Constant`` nodes into initializers, so every constant is converted in one place."""
    from onnx import TensorProto

    kept = []
    for node in graph.node:  # type: ignore[attr-defined]
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        if node.op_type == "Constant" and value is not None and value.data_type == TensorProto.FLOAT:
            tensor = type(value)()
            tensor.CopyFrom(value)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)  # type: ignore[attr-defined]
        else:
            kept.append(node)
    del graph.node[:]  # type: ignore[attr-defined]
    graph.node.extend(kept)  # type: ignore[attr-defined]


class _Fp16Rewriter:
    """Rewrites a topologically sorted FP32 graph so that bulk arithmetic runs in FP16.

    Each float tensor is ``f16`` (image-sized activations), ``f32`` (statistics computed by
    :data:`_FP32_OPS` and everything computed only from them: variance, counts, the style MLP) or a
    constant. A node runs in FP32 when it is a statistics op or all its non-constant float inputs are
    FP32; otherwise in FP16. Casts are inserted where a tensor crosses between the two.
    """

    def __init__(self, model: Any) -> None:
        from onnx import TensorProto, numpy_helper, shape_inference

        self.tp, self.numpy_helper = TensorProto, numpy_helper
        inferred = shape_inference.infer_shapes(model)
        graph = inferred.graph  # type: ignore[attr-defined]
        self.elem_type = {
            v.name: v.type.tensor_type.elem_type for v in (*graph.value_info, *graph.input, *graph.output)
        }
        self.model = model
        self.graph = model.graph  # type: ignore[attr-defined]
        self.constants = {t.name: t for t in self.graph.initializer}
        self.kind: dict[str, str] = {}
        self.casts: dict[tuple[str, int], str] = {}
        self.new_nodes: list[object] = []
        self.constant_versions: dict[tuple[str, int], str] = {}

    def is_float(self, name: str) -> bool:
        if name in self.constants:
            return self.constants[name].data_type == self.tp.FLOAT
        return self.elem_type.get(name) == self.tp.FLOAT or self.kind.get(name) in ("f16", "f32")

    def constant_as(self, name: str, to: int) -> str:
        if to == self.tp.FLOAT:
            return name
        key = (name, to)
        if key not in self.constant_versions:
            import numpy as np

            values = self.numpy_helper.to_array(self.constants[name])
            half = np.clip(values, -65504.0, 65504.0).astype(np.float16)
            tensor = self.numpy_helper.from_array(half, f"{name}__fp16")
            self.graph.initializer.append(tensor)
            self.constant_versions[key] = tensor.name
        return self.constant_versions[key]

    def cast(self, name: str, to: int) -> str:
        from onnx import helper

        key = (name, to)
        if key not in self.casts:
            suffix = "fp16" if to == self.tp.FLOAT16 else "fp32"
            out = f"{name}__{suffix}"
            self.new_nodes.append(helper.make_node("Cast", [name], [out], to=to, name=f"{out}__cast"))
            self.casts[key] = out
        return self.casts[key]

    def rewrite(self) -> None:
        for name in (v.name for v in self.graph.input if v.name not in self.constants):
            self.kind[name] = "f16"
        for node in list(self.graph.node):
            self.rewrite_node(node)
        self.finish_outputs()
        del self.graph.node[:]
        self.graph.node.extend(self.new_nodes)
        del self.graph.value_info[:]  # the old FP32 types are stale; runtimes infer them again
        used = {name for node in self.graph.node for name in node.input}
        keep = [t for t in self.graph.initializer if t.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(keep)

    def rewrite_node(self, node: object) -> None:
        inputs = list(node.input)  # type: ignore[attr-defined]
        variable = [n for n in inputs if n and n not in self.constants and self.is_float(n)]
        to_float = next((a.i for a in node.attribute if a.name == "to"), None)  # type: ignore[attr-defined]
        from_int = node.op_type == "Cast" and not variable  # type: ignore[attr-defined]
        fp32 = (
            node.op_type in _FP32_OPS  # type: ignore[attr-defined]
            or from_int
            or (variable and all(self.kind.get(n) == "f32" for n in variable))
            or not variable
        )
        target = self.tp.FLOAT if fp32 else self.tp.FLOAT16
        float_only = _FLOAT_ONLY_INPUTS.get(node.op_type, set())  # type: ignore[attr-defined]
        for index, name in enumerate(inputs):
            if not name or not self.is_float(name) or index in float_only:
                continue
            if name in self.constants:
                node.input[index] = self.constant_as(name, target)  # type: ignore[attr-defined]
            elif (self.kind.get(name) == "f32") != fp32:
                node.input[index] = self.cast(name, target)  # type: ignore[attr-defined]
        if node.op_type == "Cast" and to_float == self.tp.FLOAT and not fp32:  # type: ignore[attr-defined]
            for attribute in node.attribute:  # type: ignore[attr-defined]
                if attribute.name == "to":
                    attribute.i = self.tp.FLOAT16
        for name in node.output:  # type: ignore[attr-defined]
            if self.elem_type.get(name) == self.tp.FLOAT:
                self.kind[name] = "f32" if fp32 else "f16"
        self.new_nodes.append(node)

    def finish_outputs(self) -> None:
        from onnx import helper

        for value in self.graph.output:
            if self.kind.get(value.name) == "f32":  # rename the producer's output, cast into the graph output
                inner = f"{value.name}__fp32"
                for node in self.new_nodes:
                    node.output[:] = [inner if o == value.name else o for o in node.output]  # type: ignore[attr-defined]
                self.new_nodes.append(helper.make_node("Cast", [inner], [value.name], to=self.tp.FLOAT16))
            value.type.tensor_type.elem_type = self.tp.FLOAT16
        for value in self.graph.input:
            if value.name not in self.constants:
                value.type.tensor_type.elem_type = self.tp.FLOAT16


def convert_to_fp16(source: str | Path, target: str | Path) -> Path:
    """Write an FP16 copy of an FP32 generator ONNX: FP16 input, output and bulk arithmetic.

    Normalisation statistics (means, variances, element counts) and the small style MLP stay FP32,
    with casts at the boundaries, so FP16 neither overflows nor loses the variance's precision.
    """
    import onnx

    source, target = Path(source), Path(target).expanduser()
    signature = onnx_signature(source)
    if signature.dtype != "float32":
        raise WeightsError(f"{source} is already a {signature.dtype} ONNX model; convert an FP32 export")
    model = onnx.load(str(source))
    _constants_to_initializers(model.graph)
    _Fp16Rewriter(model).rewrite()
    onnx.checker.check_model(model)
    with atomic_path(target) as temporary:
        onnx.save(model, str(temporary))
    log.info("wrote FP16 ONNX %s", target)
    return target
