"""The generator networks (photo2cartoon's and p2c's compact one) and their weights on disk."""

from p2c.models.architectures import (
    ARCHITECTURES,
    DEFAULT_ARCH,
    Generator,
    ModelConfig,
    arch_of,
    build_generator,
)
from p2c.models.compact import COMPACT_ARCH, CompactConfig, CompactGenerator
from p2c.models.generator import (
    PHOTO2CARTOON_ARCH,
    CartoonOnly,
    GeneratorConfig,
    GeneratorOutput,
    ResnetGenerator,
)
from p2c.models.onnx import OnnxSignature, export_onnx, onnx_signature
from p2c.models.weights import (
    FORMAT_TAG,
    config_from_state_dict,
    default_weights_path,
    detect_format,
    load_generator,
    read_config,
    read_state_dict,
    save_generator,
    sidecar_path,
)

__all__ = [
    "ARCHITECTURES",
    "COMPACT_ARCH",
    "DEFAULT_ARCH",
    "FORMAT_TAG",
    "PHOTO2CARTOON_ARCH",
    "CartoonOnly",
    "CompactConfig",
    "CompactGenerator",
    "Generator",
    "GeneratorConfig",
    "GeneratorOutput",
    "ModelConfig",
    "OnnxSignature",
    "ResnetGenerator",
    "arch_of",
    "build_generator",
    "config_from_state_dict",
    "default_weights_path",
    "detect_format",
    "export_onnx",
    "load_generator",
    "onnx_signature",
    "read_config",
    "read_state_dict",
    "save_generator",
    "sidecar_path",
]
