"""The generator network and its weights on disk."""

from p2c.models.generator import CartoonOnly, GeneratorConfig, GeneratorOutput, ResnetGenerator
from p2c.models.onnx import OnnxSignature, export_onnx, onnx_signature
from p2c.models.weights import (
    FORMAT_TAG,
    config_from_state_dict,
    default_weights_path,
    detect_format,
    load_generator,
    read_state_dict,
    save_generator,
    sidecar_path,
)

__all__ = [
    "FORMAT_TAG",
    "CartoonOnly",
    "GeneratorConfig",
    "GeneratorOutput",
    "OnnxSignature",
    "ResnetGenerator",
    "config_from_state_dict",
    "default_weights_path",
    "detect_format",
    "export_onnx",
    "load_generator",
    "onnx_signature",
    "read_state_dict",
    "save_generator",
    "sidecar_path",
]
