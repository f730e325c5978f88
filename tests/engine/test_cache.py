"""The compiled-artifact cache: built once, loaded after, never a stale or corrupt file loaded silently."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from p2c.engine.cache import ArtifactCache, device_fields

FIELDS = {"weights_sha256": "ab" * 32, "precision": "fp16", "device": {"type": "cuda", "name": "H100"}}


class FakeBuilder:
    """Stands in for a compiler: 'artifacts' are text files; ``broken`` ones fail to load."""

    def __init__(self, broken: bool = False) -> None:
        self.builds = 0
        self.broken = broken

    def build_to(self, path: Path) -> None:
        self.builds += 1
        path.write_text(f"artifact #{self.builds}")

    def load(self, path: Path) -> str:
        if self.broken:
            raise RuntimeError("the loader refuses this file\nmore detail")
        return path.read_text()


def _cache(folder: Path) -> ArtifactCache:
    return ArtifactCache(folder, what="test artifact", suffix=".pt2")


def test_built_once_with_one_line_saying_how_long(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache, builder = _cache(tmp_path), FakeBuilder()
    with caplog.at_level(logging.INFO, logger="p2c.engine.cache"):
        assert cache.get_or_build("m", FIELDS, builder.build_to, builder.load) == "artifact #1"
    built = [r.getMessage() for r in caplog.records if "built the test artifact" in r.getMessage()]
    assert len(built) == 1 and " s;" in built[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="p2c.engine.cache"):
        assert cache.get_or_build("m", FIELDS, builder.build_to, builder.load) == "artifact #1"
    assert builder.builds == 1
    assert "using the cached test artifact" in caplog.text
    path, record_path = cache.paths("m", FIELDS)
    record = json.loads(record_path.read_text())
    assert record["device"] == FIELDS["device"] and len(record["artifact_sha256"]) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, record_path.name])


def test_a_corrupt_artifact_is_rebuilt_and_says_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache, builder = _cache(tmp_path), FakeBuilder()
    cache.get_or_build("m", FIELDS, builder.build_to, builder.load)
    path, _ = cache.paths("m", FIELDS)
    path.write_text("artifact #1 with a flipped bit")  # loads fine, but is not what was built
    with caplog.at_level(logging.WARNING, logger="p2c.engine.cache"):
        assert cache.get_or_build("m", FIELDS, builder.build_to, builder.load) == "artifact #2"
    assert "corrupt" in caplog.text


def test_an_artifact_that_does_not_load_is_rebuilt_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = _cache(tmp_path)
    cache.build("m", FIELDS, FakeBuilder().build_to, FakeBuilder().load)
    broken = FakeBuilder(broken=True)
    with caplog.at_level(logging.WARNING, logger="p2c.engine.cache"):
        assert cache.cached("m", FIELDS, broken.load) is None
    assert "does not load (the loader refuses this file)" in caplog.text


def test_a_record_for_other_fields_is_never_loaded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache, builder = _cache(tmp_path), FakeBuilder()
    cache.get_or_build("m", FIELDS, builder.build_to, builder.load)
    _, record_path = cache.paths("m", FIELDS)
    record = json.loads(record_path.read_text())
    record["precision"] = "fp32"  # a record that no longer describes what the key says
    record_path.write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="p2c.engine.cache"):
        assert cache.cached("m", FIELDS, builder.load) is None
    assert "built for different precision" in caplog.text


def test_new_fields_build_anew_and_remove_the_stale_artifact(tmp_path: Path) -> None:
    cache, builder = _cache(tmp_path), FakeBuilder()
    cache.get_or_build("m", FIELDS, builder.build_to, builder.load)
    cache.get_or_build("other-model", FIELDS, builder.build_to, builder.load)
    newer = {**FIELDS, "weights_sha256": "cd" * 32}
    assert cache.get_or_build("m", newer, builder.build_to, builder.load) == "artifact #3"
    names = sorted(p.name for p in tmp_path.glob("*.pt2"))
    assert names == sorted([cache.paths("m", newer)[0].name, cache.paths("other-model", FIELDS)[0].name])


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    cache = _cache(tmp_path)

    def failing(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError, match="compiler crashed"):
        cache.build("m", FIELDS, failing, FakeBuilder().load)
    assert list(tmp_path.iterdir()) == []


def test_cpu_device_fields_name_the_architecture_and_vector_isa() -> None:
    fields = device_fields(torch.device("cpu"))
    assert fields["type"] == "cpu" and fields["arch"] and fields["isa"]
