"""p2c-eval and its metrics: KID on fixed features, a report and a grid, picking the best checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from p2c.models.generator import GeneratorConfig
from p2c.training.commands.evaluate import main as eval_main
from p2c.training.evaluation import EvalReport, evaluate_generator, load_crops, pick_best
from p2c.training.metrics import StyleFeatures, identity_rank1, kernel_inception_distance


def test_kid_separates_different_sets_and_is_near_zero_for_one_distribution() -> None:
    generator = torch.Generator().manual_seed(0)
    features = StyleFeatures()
    noise_a = torch.rand(12, 3, 64, 64, generator=generator) * 2 - 1
    noise_b = torch.rand(12, 3, 64, 64, generator=generator) * 2 - 1
    flat = torch.rand(12, 3, 1, 1, generator=generator).expand(12, 3, 64, 64) * 2 - 1
    same = kernel_inception_distance(features(noise_a), features(noise_b))
    different = kernel_inception_distance(features(noise_a), features(flat))
    assert abs(same) < 0.2 * different


def test_pick_best_ranks_kid_and_identity() -> None:
    reports = [
        EvalReport("a", 4, 4, kid=0.5, identity_mean=0.9),
        EvalReport("b", 4, 4, kid=0.1, identity_mean=0.8),
        EvalReport("c", 4, 4, kid=0.9, identity_mean=0.1),
    ]
    assert pick_best(reports).weights == "b"
    # With the gauge's figure too: "a" is second on KID and identity, first on cartoon-ness.
    reports[0].cartoon_mean, reports[1].cartoon_mean, reports[2].cartoon_mean = 0.9, 0.1, 0.5
    assert pick_best(reports).weights == "a"
    # And with the style distance and blotches: "a" is last on both, "b" first.
    for report, style, blotches in zip(reports, (9.0, 1.0, 5.0), (1.0, 0.0, 0.5), strict=True):
        report.style_distance, report.blotch_fraction = style, blotches
    assert pick_best(reports).weights == "b"


def test_rank1_asks_whether_each_photo_picks_out_its_own_cartoon() -> None:
    photos = torch.eye(4)
    assert identity_rank1(photos, photos + 0.1).tolist() == [True] * 4
    swapped = photos[[1, 0, 2, 3]]  # the first two photos got each other's cartoon
    assert identity_rank1(photos, swapped).tolist() == [False, False, True, True]
    same_face = torch.ones(4, 4)  # one face drawn for everyone: only the first "wins" the tie
    assert identity_rank1(photos, same_face).float().mean() == 0.25


class IdentityGenerator(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.config = GeneratorConfig(img_size=256)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return images, None, None


def test_a_generator_that_returns_its_input_keeps_identity_but_makes_no_cartoons(
    prepared: dict, faceid_standin
) -> None:
    data = prepared["data"]
    names, photos, _ = load_crops(data / "testA")
    _, cartoons, _ = load_crops(data / "trainB")
    report = evaluate_generator(
        IdentityGenerator(), names, photos, cartoons, faceid_standin, torch.device("cpu"), "identity"
    )
    assert report.identity_rank1 == 1.0 and report.identity_mean == pytest.approx(1.0)
    assert report.cartoon_mean is not None and report.cartoon_mean < 0.5 and report.cartoon_fraction == 0.0
    assert report.reference_cartoon_mean is not None and report.reference_cartoon_mean > 0.5
    assert set(report.per_photo_cartoon) == set(names)
    # Every colour of its "cartoons" was the photo's own: no blotches, whatever the photos wear.
    assert report.blotch_fraction == 0.0 and set(report.per_photo_blotch) == set(names)
    assert report.style_distance is not None and report.style_cartoons == len(cartoons)
    # The stand-in is not dlib's network: no dlib distance, and the report says why.
    assert report.dlib_distance_mean is None and report.dlib_note and "dlib" in report.dlib_note


@pytest.fixture
def tiny_weights(tiny_generator, tmp_path: Path) -> Path:
    path = tmp_path / "tiny.pt"
    torch.save({"genA2B": tiny_generator.state_dict()}, path)
    return path


def test_eval_writes_report_and_grid(tiny_weights: Path, prepared: dict, tmp_path: Path) -> None:
    data = prepared["data"]
    out = tmp_path / "eval"
    argv = [
        "--weights",
        str(tiny_weights),
        "--photos",
        str(data / "testA"),
        "--cartoons",
        str(data / "trainB"),
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    assert eval_main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    (entry,) = report["reports"]
    assert entry["photos"] == 2 and entry["cartoons"] == 4
    assert isinstance(entry["kid"], float)
    assert 0 <= entry["cartoon_mean"] <= 1 and entry["cartoon_fraction"] in (0.0, 0.5, 1.0)
    assert set(entry["per_photo_cartoon"]) == set(entry["per_photo_identity"])
    assert entry["identity_rank1"] in (0.0, 0.5, 1.0)
    assert entry["dlib_distance_mean"] > 0 and entry["dlib_same_fraction"] in (0.0, 0.5, 1.0)
    assert isinstance(entry["style_distance"], float) and entry["style_cartoons"] == 4
    assert set(entry["style_blocks"]) == {"layout", "colour", "palette", "lines", "strength", "flatness"}
    assert entry["blotch_fraction"] in (0.0, 0.5, 1.0) and set(entry["per_photo_blotch"]) == set(
        entry["per_photo_cartoon"]
    )
    assert report["best"] == str(tiny_weights)
    assert (out / "grid_tiny.png").is_file()
    table = (out / "report.md").read_text()
    assert "style distance" in table and "blotches > 1 %" in table and "`tiny.pt`" in table


def test_eval_measures_the_style_against_the_folders_named(
    tiny_weights: Path, prepared: dict, tmp_path: Path
) -> None:
    data = prepared["data"]
    argv = ["--weights", str(tiny_weights), "--photos", str(data / "testA"), "--cartoons"]
    argv += [str(data / "testB"), "--style-cartoons", str(data / "trainB"), str(data / "testB")]
    argv += ["--out", str(tmp_path / "eval"), "--device", "cpu"]
    assert eval_main(argv) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["style_cartoons_dirs"] == [str(data / "trainB"), str(data / "testB")]
    assert report["reports"][0]["cartoons"] == 2 and report["reports"][0]["style_cartoons"] == 6


def test_eval_aligns_raw_photos_on_the_fly(
    tiny_weights: Path, raw_photos: Path, prepared: dict, tmp_path
) -> None:
    out = tmp_path / "eval"
    argv = [
        "--weights",
        str(tiny_weights),
        "--photos",
        str(raw_photos),
        "--cartoons",
        str(prepared["data"] / "trainB"),
        "--out",
        str(out),
        "--max-photos",
        "4",
        "--device",
        "cpu",
    ]
    assert eval_main(argv) == 0
    (entry,) = json.loads((out / "report.json").read_text())["reports"]
    assert entry["photos"] + len(entry["skipped_photos"]) == 4


def test_eval_of_missing_weights_is_one_line(prepared: dict, tmp_path: Path, capsys) -> None:
    data = prepared["data"]
    argv = [
        "--weights",
        str(tmp_path / "none.pt"),
        "--photos",
        str(data / "testA"),
        "--cartoons",
        str(data / "trainB"),
    ]
    assert eval_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("p2c-eval: error: ") and len(err.strip().splitlines()) == 1
