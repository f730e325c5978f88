"""The cartoon-ness gauge: P(cartoon) per image, from a small CNN fitted on p2c's own crops.

It judges a generator's outputs in ``p2c-eval`` and in the default model's gate. Fitted once by
``recipes/fit_gauge.py`` (trainA photos against trainB cartoons, the same augmentation for both);
the weights ship here (``cartoon_gauge.safetensors`` and its ``.json``). docs/default-model.md has
how it was fitted and its held-out figures.
"""

from p2c.training.gauge.network import (
    GAUGE_FORMAT,
    CartoonGauge,
    GaugeConfig,
    default_gauge_path,
    load_gauge,
    read_gauge_record,
    save_gauge,
)

__all__ = [
    "GAUGE_FORMAT",
    "CartoonGauge",
    "GaugeConfig",
    "default_gauge_path",
    "load_gauge",
    "read_gauge_record",
    "save_gauge",
]
