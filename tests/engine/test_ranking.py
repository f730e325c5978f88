"""``auto`` tries the backends fastest first, by figures measured per device type, and says why."""

from __future__ import annotations

from p2c.engine.ranking import MEASURED, explain_order, rank_backends
from p2c.engine.registry import auto_order, backend_names


def test_measured_backends_come_first_fastest_first() -> None:
    order = rank_backends("cpu", backend_names())
    measured = [name for name in order if name in MEASURED["cpu"]]
    assert order[: len(measured)] == measured
    speeds = [MEASURED["cpu"][name].faces_per_s for name in measured]
    assert speeds == sorted(speeds, reverse=True)


def test_tensorrt_is_never_tried_on_the_cpu_and_unmeasured_ones_go_last() -> None:
    assert "tensorrt" not in rank_backends("cpu", backend_names())
    cuda = rank_backends("cuda", backend_names())
    assert set(cuda) == set(backend_names())
    first_unmeasured = min(i for i, name in enumerate(cuda) if name not in MEASURED["cuda"])
    assert all(name not in MEASURED["cuda"] for name in cuda[first_unmeasured:])


def test_onnx_and_compiled_packages_have_one_runner() -> None:
    assert auto_order("onnx", "cuda") == ["onnxruntime"]
    assert auto_order("aoti", "cpu") == ["inductor"]
    assert auto_order("pt", "cpu") == rank_backends("cpu", backend_names())


def test_the_explanation_names_each_figure_and_where_it_was_measured() -> None:
    text = explain_order("cuda", ["inductor", "torch", "tensorrt"])
    assert "inductor (978.7 faces/s" in text and "tensorrt (not measured on cuda)" in text
    assert "H100" in text


def test_the_compact_generator_is_ranked_and_explained_by_its_own_figures() -> None:
    """``auto`` on the default model quotes the compact generator's speed, not photo2cartoon's."""
    from p2c.engine.ranking import measured_for

    compact = measured_for("compact")["cpu"]
    assert compact["onnxruntime"].faces_per_s > 50 * MEASURED["cpu"]["onnxruntime"].faces_per_s
    order = auto_order("safetensors", "cpu", arch="compact")
    assert order[0] == "onnxruntime" and set(order) == set(rank_backends("cpu", backend_names()))
    text = explain_order("cpu", order, arch="compact")
    assert "onnxruntime (114.46 faces/s" in text and "compact generator measured on" in text
    assert "2.12 faces/s" not in text
    assert measured_for("something new") is MEASURED  # unknown: photo2cartoon's figures


def test_auto_logs_the_default_models_own_figures(caplog) -> None:
    import logging

    from p2c.engine import EngineConfig, create_engine

    with caplog.at_level(logging.INFO, logger="p2c.engine.registry"):
        create_engine(None, EngineConfig(device="cpu")).close()
    line = next(r.getMessage() for r in caplog.records if "inference backend" in r.getMessage())
    assert "114.46 faces/s" in line and "compact generator" in line
