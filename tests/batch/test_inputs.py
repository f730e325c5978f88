"""Finding the inputs, mirroring them under OUT, skipping finished outputs, recognising temporary files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from p2c.batch.inputs import find_inputs, partial_files, plan_batch, probe_frames, remove_partials
from p2c.errors import InputNotFoundError, InvalidInputError
from p2c.files import atomic_path


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    for name in (
        "a.mp4",
        "sub/b.webm",
        "sub/deep/c.jpg",
        "d.webp",
        "notes.txt",
        ".hidden.mp4",
        ".cache/e.png",
    ):
        _touch(root / name)
    return root


def _relative(paths: list[Path], root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in paths)


def test_a_folder_is_searched_recursively_for_videos_and_images(tree: Path) -> None:
    root, files = find_inputs(tree)
    assert root == tree
    assert _relative(files, tree) == ["a.mp4", "d.webp", "sub/b.webm", "sub/deep/c.jpg"]


def test_outputs_mirror_the_tree_with_writable_suffixes(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan = plan_batch(tree, out)
    targets = {Path(job.source).relative_to(tree).as_posix(): Path(job.target) for job in plan.jobs}
    assert targets == {
        "a.mp4": out / "a.mp4",
        "sub/b.webm": out / "sub/b.mp4",  # H.264 goes into .mp4, not .webm
        "sub/deep/c.jpg": out / "sub/deep/c.jpg",
        "d.webp": out / "d.png",
    }
    assert {job.kind for job in plan.jobs if job.source.endswith((".mp4", ".webm"))} == {"video"}


def test_an_output_folder_inside_the_input_is_not_an_input(tree: Path) -> None:
    _touch(tree / "out" / "a.mp4")
    plan = plan_batch(tree, tree / "out")
    assert "out/a.mp4" not in _relative([Path(job.source) for job in plan.jobs], tree)
    assert [Path(job.source).name for job in plan.skipped] == ["a.mp4"]  # its output exists


def test_finished_outputs_are_skipped(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _touch(out / "sub/deep/c.jpg")
    plan = plan_batch(tree, out)
    assert [Path(job.target).relative_to(out).as_posix() for job in plan.skipped] == ["sub/deep/c.jpg"]
    assert len(plan.jobs) == 3


def test_a_glob_mirrors_from_its_fixed_part(tree: Path, tmp_path: Path) -> None:
    plan = plan_batch(f"{tree}/sub/**/*", tmp_path / "out")
    assert sorted(Path(job.target).relative_to(tmp_path / "out").as_posix() for job in plan.jobs) == [
        "b.mp4",
        "deep/c.jpg",
    ]


def test_a_list_file_names_inputs_and_bad_entries_are_reported(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = tree / "inputs.txt"
    listing.write_text("# clips to do\na.mp4\n\nsub/deep/c.jpg\nmissing.mp4\nnotes.txt\n")
    monkeypatch.chdir(tmp_path)  # relative entries are relative to the list, not the working folder
    plan = plan_batch(listing, tmp_path / "out")
    assert sorted(Path(job.target).name for job in plan.jobs) == ["a.mp4", "c.jpg"]
    problems = {Path(source).name: reason for source, reason in plan.problems}
    assert problems["missing.mp4"] == "does not exist"
    assert "not a video or image" in problems["notes.txt"]


def test_two_inputs_with_one_output_name_are_reported(tmp_path: Path) -> None:
    _touch(tmp_path / "in/clip.mov")
    _touch(tmp_path / "in/clip.webm")  # would become clip.mp4 ... and clip.mov stays clip.mov
    _touch(tmp_path / "in/clip.avi")  # also clip.mp4
    plan = plan_batch(tmp_path / "in", tmp_path / "out")
    assert len(plan.problems) == 1 and "rename one" in plan.problems[0][1]


def test_missing_input_and_empty_list_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="does not exist"):
        find_inputs(tmp_path / "nope")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(InvalidInputError, match="names no file"):
        find_inputs(tmp_path / "empty.txt")


def test_videos_are_probed_and_queued_longest_first(talking_clip: Path, tmp_path: Path) -> None:
    assert probe_frames(talking_clip) == 78
    assert probe_frames(talking_clip, start=1.0, duration=1.0) == 25
    assert probe_frames(_touch(tmp_path / "broken.mp4", os.urandom(2000))) == 0
    shutil.copy(talking_clip, tmp_path / "long.mp4")
    _touch(tmp_path / "still.png")
    _touch(tmp_path / "broken2.mp4", os.urandom(2000))
    plan = plan_batch(tmp_path, tmp_path / "out")
    assert [(Path(job.source).name, job.frames) for job in plan.jobs] == [
        ("long.mp4", 78),
        ("broken.mp4", 1),
        ("broken2.mp4", 1),
        ("still.png", 1),
    ]


def test_temporary_files_of_both_atomic_writers_are_found_and_removed(tmp_path: Path) -> None:
    video, still = tmp_path / "a.b.mp4", tmp_path / "a.png"
    _touch(tmp_path / "a.mp4")  # a finished neighbour with a similar name stays
    with pytest.raises(FileNotFoundError), atomic_path(video) as partial:
        partial.write_bytes(b"half")
        assert partial_files(video) == [partial]
        image_partial = _touch(tmp_path / f".a.png.{os.getpid()}.0123abcd.tmp")
        assert partial_files(still) == [image_partial]
        assert partial_files(tmp_path / "a.mp4") == []
        # What the driver does for a dead worker: its writer can then never publish the output.
        assert remove_partials(video) == 1 and remove_partials(still) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.mp4"]
