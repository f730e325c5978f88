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
