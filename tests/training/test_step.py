"""The fast training step computes what the reference step computes (CPU), and never syncs.

The reference step is the step as first written (StepOptions(): every speed-up off). The speed-ups
that do the same arithmetic in the same order must give the reference's losses and weights to
float rounding. Fused Adam and channels-last convolutions round differently: their first step's
losses agree to rounding, and later ones within 2 %: Adam's first updates are about lr times the
sign of each gradient, so a gradient that rounding moves across zero moves its weight by 2 lr,
and a GAN amplifies that. The GPU-only parts (CUDA graph, bf16) are compared on a GPU.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

from p2c.training.config import LossWeights, TrainConfig
from p2c.training.gan import NETWORK_KEYS
from p2c.training.graphs import CompiledOrEager, CudaGraphStep
from p2c.training.step import GanStep, StepOptions, build_networks

STEPS = 3
EXACT = ["share_translations", "freeze_discriminators", "out_of_place_activations"]
SPEED_UPS = [
    "share_translations",
    "freeze_discriminators",
    "fused_optimizer",
    "channels_last",
    "out_of_place_activations",
    "checkpoint_hourglasses",
]
EVERYTHING = StepOptions(**{name: True for name in SPEED_UPS})
CONFIG = TrainConfig(data_dir="d", out_dir="o", img_size=96, ch=8, weights=LossWeights(faceid=1.0))


def _batches(
    device: torch.device, count: int = STEPS, batch: int = 1
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(11)
    shape = (batch, 3, CONFIG.img_size, CONFIG.img_size)
    return [
        (
            (torch.rand(shape, generator=generator) * 2 - 1).to(device),
            (torch.rand(shape, generator=generator) * 2 - 1).to(device),
        )
        for _ in range(count)
    ]


def _step(
    options: StepOptions, standin: type[torch.nn.Module], device: torch.device, amp: torch.dtype | None = None
) -> GanStep:
    faceid = standin()  # its own: the step moves it to the device and sets its layout
    torch.manual_seed(0)
    gan, optimizers = build_networks(CONFIG, device, options, amp, faceid)
    return GanStep(gan, faceid, CONFIG.weights, optimizers, amp, device, options)


def _run(step, batches) -> list[dict[str, float]]:
    return [{k: float(v.detach()) for k, v in step(a, b).items()} for a, b in batches]


@pytest.fixture(scope="module")
def reference(faceid_standins) -> tuple[list[dict[str, float]], dict]:
    step = _step(StepOptions(), faceid_standins, torch.device("cpu"))
    losses = _run(step, _batches(torch.device("cpu")))
    return losses, step.gan.network_state_dicts()


def _assert_close(
    losses: list[dict[str, float]],
    expected: list[dict[str, float]],
    rtol: float,
    first_rtol: float | None = None,
) -> None:
    assert [set(step) for step in losses] == [set(step) for step in expected]
    for number, (got, want) in enumerate(zip(losses, expected, strict=True), start=1):
        tolerance = first_rtol if number == 1 and first_rtol is not None else rtol
        for name, value in want.items():
            assert got[name] == pytest.approx(value, rel=tolerance, abs=1e-6), f"step {number}: {name}"


def _assert_weights_close(step: GanStep, expected: dict, atol: float) -> None:
    weights = step.gan.network_state_dicts()
    for key in NETWORK_KEYS:
        for name, tensor in expected[key].items():
            assert torch.allclose(weights[key][name], tensor, atol=atol, rtol=0), f"{key}.{name}"


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        pytest.param(StepOptions(**dict.fromkeys(EXACT, True)), id="+".join(EXACT)),
        pytest.param(StepOptions(checkpoint_hourglasses=True), id="checkpoint_hourglasses"),
    ],
)
def test_exact_speed_ups_give_the_reference_losses_and_weights(options, reference, faceid_standins) -> None:
    expected_losses, expected_weights = reference
    step = _step(options, faceid_standins, torch.device("cpu"))
    _assert_close(_run(step, _batches(torch.device("cpu"))), expected_losses, rtol=1e-5)
    _assert_weights_close(step, expected_weights, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        pytest.param(StepOptions(fused_optimizer=True), id="fused_optimizer"),
        pytest.param(StepOptions(channels_last=True), id="channels_last"),
        pytest.param(EVERYTHING, id="all"),
    ],
)
def test_rounding_speed_ups_give_the_reference_losses(options, reference, faceid_standins) -> None:
    expected_losses, _ = reference
    step = _step(options, faceid_standins, torch.device("cpu"))
    _assert_close(_run(step, _batches(torch.device("cpu"))), expected_losses, rtol=2e-2, first_rtol=1e-5)


def test_fused_adam_makes_the_reference_updates() -> None:
    from p2c.training.optimizers import build_optimizers

    torch.manual_seed(3)
    params = [torch.nn.Parameter(torch.randn(64, 8, 3, 3)), torch.nn.Parameter(torch.randn(17))]
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    cpu = torch.device("cpu")
    fused = build_optimizers(params, [torch.nn.Parameter(torch.zeros(1))], CONFIG, cpu, False, fused=True)
    plain = build_optimizers(copies, [torch.nn.Parameter(torch.zeros(1))], CONFIG, cpu, False, fused=False)
    assert fused.fused and not plain.fused
    for _ in range(5):
        gradients = [torch.randn_like(p) * 1e-3 for p in params]
        for group, optimizer in ((params, fused.g), (copies, plain.g)):
            for parameter, gradient in zip(group, gradients, strict=True):
                parameter.grad = gradient.clone()
            optimizer.step()
    for a, b in zip(params, copies, strict=True):
        assert torch.allclose(a, b, atol=1e-7, rtol=0)


def test_the_step_reads_no_tensor_on_the_host(monkeypatch: pytest.MonkeyPatch, faceid_standins) -> None:
    step = _step(EVERYTHING, faceid_standins, torch.device("cpu"))
    (a, b), *_ = _batches(torch.device("cpu"), count=1)

    def host_read(*_: object, **__: object) -> None:
        raise AssertionError("the training step read a tensor's value on the host (a GPU sync)")

    for name in ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, host_read)
    losses = step(a, b)
    monkeypatch.undo()
    assert all(loss.dim() == 0 and torch.isfinite(loss) for loss in losses.values())


def test_a_failed_graph_capture_runs_the_step_eagerly_after_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, faceid_standins
) -> None:
    batches = _batches(torch.device("cpu"))
    eager = _run(_step(EVERYTHING, faceid_standins, torch.device("cpu")), batches)

    def capture_fails(self, *_: object) -> None:
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    monkeypatch.setattr(CudaGraphStep, "_capture", capture_fails)
    dropped = []
    graphed = CudaGraphStep(
        _step(EVERYTHING, faceid_standins, torch.device("cpu")),
        warmup=0,
        on_failure=lambda: dropped.append(1),
    )
    with caplog.at_level(logging.WARNING, logger="p2c.training.graphs"):
        losses = _run(graphed, batches)
    assert graphed.eager and not graphed.captured and dropped == [1]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "capturing the training step as a CUDA graph failed (RuntimeError: operation not permitted "
        "when stream is capturing); it runs eagerly"
    ]
    _assert_close(losses, eager, rtol=1e-6)


def test_a_failed_compile_runs_eagerly_after_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def compiled(x: int) -> int:
        raise RuntimeError("inductor: no C++ compiler")

    def eager(x: int) -> int:
        calls.append(x)
        return x + 1

    wrapped = CompiledOrEager(compiled, eager, "the generators")
    with caplog.at_level(logging.WARNING, logger="p2c.training.graphs"):
        assert [wrapped(1), wrapped(2)] == [2, 3]
    assert calls == [1, 2] and wrapped.failed
    assert [r.getMessage() for r in caplog.records] == [
        "torch.compile of the generators failed (RuntimeError: inductor: no C++ compiler); it runs eagerly"
    ]


def test_a_run_uses_every_exact_speed_up_and_the_graph_only_where_it_can(caplog) -> None:
    cpu = torch.device("cpu")
    options = StepOptions.for_run(CONFIG, cpu, None, distributed=False)
    assert options == dataclasses.replace(EVERYTHING, channels_last=False, checkpoint_hourglasses=False)
    with caplog.at_level(logging.WARNING, logger="p2c.training.step"):
        forced = StepOptions.for_run(dataclasses.replace(CONFIG, cuda_graph="on"), cpu, None, False)
    assert forced.graph == "off" and "the device is not a CUDA GPU" in caplog.text
    cuda = torch.device("cuda", 0)
    assert StepOptions.for_run(CONFIG, cuda, torch.bfloat16, False).graph == "cuda"
    assert StepOptions.for_run(CONFIG, cuda, torch.bfloat16, False).channels_last
    assert StepOptions.for_run(CONFIG, cuda, torch.bfloat16, True).graph == "off"
    assert StepOptions.for_run(CONFIG, cuda, torch.float16, False).graph == "off"
    assert (
        StepOptions.for_run(dataclasses.replace(CONFIG, compile=True), cuda, None, False).graph == "compile"
    )


@pytest.mark.gpu
def test_on_a_gpu_the_graphed_bf16_step_agrees_with_the_eager_one_and_never_syncs(faceid_standins) -> None:
    cuda = torch.device("cuda")
    batches = _batches(cuda, count=6, batch=4)
    eager = _run(_step(StepOptions(), faceid_standins, cuda, torch.bfloat16), batches)
    fast_options = dataclasses.replace(EVERYTHING, checkpoint_hourglasses=False, graph="cuda")
    graphed = CudaGraphStep(_step(fast_options, faceid_standins, cuda, torch.bfloat16), warmup=2)
    losses = []
    for number, (a, b) in enumerate(batches):
        if number >= 3:  # captured: replays must not wait for the GPU
            torch.cuda.set_sync_debug_mode("error")
        try:
            out = graphed(a, b)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        losses.append({k: float(v) for k, v in out.items()})
    assert graphed.captured and not graphed.eager
    _assert_close(losses, eager, rtol=5e-2)  # bf16: about 3 significant digits per op
