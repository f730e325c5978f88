"""p2c-prepare-data: counts and skips, manifest, test split, raw folder untouched, refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import pytest

from p2c.training.commands.prepare import main as prepare_main


def _fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_counts_skips_and_split(prepared: dict) -> None:
    data, report = prepared["data"], prepared["A"]
    assert report.counts == {"written": 6, "no_face": 2, "multiple_faces": 0, "unreadable": 1}
    assert (report.train, report.test) == (4, 2)
    assert len(list((data / "trainA").glob("*.png"))) == 4
    assert len(list((data / "testA").glob("*.png"))) == 2
    crop = cv2.imread(str(next((data / "trainA").glob("*.png"))))
    assert crop.shape == (256, 256, 3)
    assert prepared["B"].counts["written"] == 6 and prepared["B"].test == 2


def test_manifest_names_every_source(prepared: dict, photo_names: dict) -> None:
    manifest = json.loads((prepared["data"] / "manifest_A.json").read_text())
    files = manifest["files"]
    assert files["broken.jpg"] == {"status": "unreadable", "output": None}
    assert files["blank.png"]["status"] == "no_face"
    assert files[photo_names["without_face"]]["status"] == "no_face"
    outputs = [files[name]["output"] for name in photo_names["with_face"]]
    assert all((prepared["data"] / output).is_file() for output in outputs)
    assert sum(output.startswith("testA/") for output in outputs) == 2


def test_raw_folder_is_never_modified(raw_photos: Path, tmp_path: Path) -> None:
    before = _fingerprint(raw_photos)
    assert prepare_main([str(raw_photos), str(tmp_path / "data"), "--workers", "1", "--no-progress"]) == 0
    assert _fingerprint(raw_photos) == before


def test_split_is_seeded(raw_cartoons: Path, prepared: dict, tmp_path: Path) -> None:
    out = tmp_path / "data"
    assert (
        prepare_main(
            [
                str(raw_cartoons),
                str(out),
                "--domain",
                "B",
                "--split-test",
                "2",
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (out / "testB").iterdir()) == sorted(
        p.name for p in (prepared["data"] / "testB").iterdir()
    )


@pytest.mark.parametrize("case", ["inside raw", "equal to raw", "missing raw", "non-empty output"])
def test_refusals_are_one_line(case: str, raw_photos: Path, prepared: dict, tmp_path: Path, capsys) -> None:
    raw, out = raw_photos, tmp_path / "out"
    if case == "inside raw":
        out = raw_photos / "prepared"
    elif case == "equal to raw":
        out = raw_photos
    elif case == "missing raw":
        raw = tmp_path / "nowhere"
    else:
        out = prepared["data"]
    before = _fingerprint(raw_photos)
    assert prepare_main([str(raw), str(out), "--workers", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("p2c-prepare-data: error: ") and len(err.strip().splitlines()) == 1
    assert _fingerprint(raw_photos) == before


def test_several_faces_skipped_or_largest_kept(
    shared_photos: Path, photo_names: dict, tmp_path: Path
) -> None:
    left = cv2.imread(str(shared_photos / photo_names["with_face"][0]))
    right = cv2.imread(str(shared_photos / photo_names["with_face"][1]))
    height = min(left.shape[0], right.shape[0])
    pair = [cv2.resize(im, (round(im.shape[1] * height / im.shape[0]), height)) for im in (left, right)]
    raw = tmp_path / "raw"
    raw.mkdir()
    cv2.imwrite(str(raw / "two_people.png"), cv2.hconcat(pair))
    assert prepare_main([str(raw), str(tmp_path / "skip"), "--workers", "1", "--no-progress"]) == 0
    skipped = json.loads((tmp_path / "skip" / "manifest_A.json").read_text())
    assert skipped["counts"]["multiple_faces"] == 1 and skipped["counts"]["written"] == 0
    argv = [str(raw), str(tmp_path / "keep"), "--workers", "1", "--no-progress", "--allow-multiple-faces"]
    assert prepare_main(argv) == 0
    kept = json.loads((tmp_path / "keep" / "manifest_A.json").read_text())
    assert kept["counts"]["written"] == 1
    assert (tmp_path / "keep" / kept["files"]["two_people.png"]["output"]).is_file()
