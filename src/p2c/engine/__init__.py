"""The inference engine: one generator behind one interface, whatever runs it."""

from p2c.engine.base import PRECISIONS, Backend, Batch, EngineConfig, resolve_precision
from p2c.engine.options import add_engine_arguments, engine_config_from_args
from p2c.engine.registry import auto_order, available_backends, backend_names, create_backend, create_engine
from p2c.engine.tensors import batch_to_images, images_to_batch

__all__ = [
    "PRECISIONS",
    "Backend",
    "Batch",
    "EngineConfig",
    "add_engine_arguments",
    "auto_order",
    "available_backends",
    "backend_names",
    "batch_to_images",
    "create_backend",
    "create_engine",
    "engine_config_from_args",
    "images_to_batch",
    "resolve_precision",
]
