from __future__ import annotations

from pathlib import Path

import pytest
import torch

from p2c.devices import resolve_device
from p2c.errors import BackendUnavailableError, InvalidInputError, OutputError
from p2c.files import atomic_path, atomic_write, require_folder


def test_atomic_write_replaces_the_file_only_when_the_block_succeeds(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as file:
        file.write("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    with atomic_write(target) as file:
        file.write("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # no temporary debris


def test_atomic_path_keeps_the_suffix_for_writers_that_pick_the_format_by_name(tmp_path: Path) -> None:
    target = tmp_path / "weights.pt"
    with atomic_path(target) as temporary:
        assert temporary.parent == tmp_path and temporary.suffix == ".pt" and temporary != target
        torch.save({"x": torch.ones(2)}, temporary)
    assert torch.equal(torch.load(target)["x"], torch.ones(2))


def test_a_missing_output_folder_is_one_sentence_naming_it(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"output folder .*nowhere does not exist; create it first"):
        require_folder(tmp_path / "nowhere" / "out.png")
    with pytest.raises(OutputError, match="does not exist"), atomic_write(tmp_path / "nowhere" / "x.txt"):
        pass
    assert require_folder(tmp_path / "out.png") == tmp_path / "out.png"


def test_resolve_device_names_cpu_and_auto() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(InvalidInputError, match="not a device name"):
        resolve_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_a_gpu_is_one_line() -> None:
    with pytest.raises(BackendUnavailableError, match="use --device cpu"):
        resolve_device("cuda")


@pytest.mark.gpu
def test_cuda_means_this_process_gpu() -> None:
    assert resolve_device("cuda", local_rank=0) == torch.device("cuda", 0)
