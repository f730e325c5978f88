"""Training fixtures: a Face ID stand-in, raw folders from ../shared, crops prepared once per session."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

PHOTOS_WITH_FACE = [f"photo_{i:04d}.jpg" for i in range(1, 7)]
PHOTO_WITHOUT_FACE = "photo_0539.jpg"  # the only trainA photo where FaceAligner finds no face
HELDOUT_PHOTOS, HELDOUT_SEED = 40, 0  # recipes/default_model.sh: --split-test 40 --seed 0
CARTOONS = [f"cartoon_{i:03d}.png" for i in range(6)]


class FaceIdStandIn(nn.Module):
    """The FaceIdNetwork interface (RGB [-1, 1] any size -> unit embeddings), tiny and frozen."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(7)
        self.conv = nn.Conv2d(3, 8, kernel_size=4, stride=4)
        self.fc = nn.Linear(8 * 4 * 4, 16)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
        self.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False)
        x = F.adaptive_avg_pool2d(torch.relu(self.conv(x)), 4).flatten(1)
        return F.normalize(self.fc(x), dim=1)


@pytest.fixture(scope="session")
def smooth_crops(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int, int], Path]:
    """A maker of training folders: ``count`` smooth random ``size``-pixel 'photos' and 'cartoons'
    (PNG in trainA and trainB), enough for a few steps."""

    def make(size: int, count: int) -> Path:
        data = tmp_path_factory.mktemp(f"crops{size}")
        rng = np.random.default_rng(0)
        for domain in ("trainA", "trainB"):
            (data / domain).mkdir()
            for i in range(count):
                image = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (size, size))
                cv2.imwrite(str(data / domain / f"{i}.png"), image)
        return data

    return make


@pytest.fixture
def photo_names() -> dict[str, object]:
    return {"with_face": list(PHOTOS_WITH_FACE), "without_face": PHOTO_WITHOUT_FACE}


@pytest.fixture
def faceid_standin() -> FaceIdStandIn:
    return FaceIdStandIn()


@pytest.fixture(scope="session")
def faceid_standins() -> type[FaceIdStandIn]:
    """The stand-in's class, for tests that need a fresh one per network set (devices, layouts)."""
    return FaceIdStandIn


@pytest.fixture(scope="session")
def raw_photos(shared_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six photos with a face, one without, a blank image and a file that is not an image."""
    folder = tmp_path_factory.mktemp("raw_photos")
    for name in [*PHOTOS_WITH_FACE, PHOTO_WITHOUT_FACE]:
        shutil.copy2(shared_photos / name, folder / name)
    cv2.imwrite(str(folder / "blank.png"), np.full((240, 320, 3), 255, np.uint8))
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG")
    return folder


@pytest.fixture(scope="session")
def raw_cartoons(shared_cartoons: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("raw_cartoons")
    for name in CARTOONS:
        shutil.copy2(shared_cartoons / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def prepared(raw_photos: Path, raw_cartoons: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """trainA/testA from the photos (2 held out), trainB/testB from the cartoons (2 held out)."""
    from p2c.training.preparation import PrepareConfig, prepare_dataset

    data = tmp_path_factory.mktemp("prepared") / "data"
    report_a = prepare_dataset(PrepareConfig(str(raw_photos), str(data), "A", workers=1, split_test=2), False)
    report_b = prepare_dataset(
        PrepareConfig(str(raw_cartoons), str(data), "B", workers=2, split_test=2), False
    )
    return {"data": data, "A": report_a, "B": report_b}


@pytest.fixture(scope="session")
def train_data(prepared: dict) -> Path:
    return prepared["data"]


def heldout_photo_names(photos: Path) -> list[str]:
    """The default model's 40 testA photos: p2c-prepare-data's seeded choice among the written crops.

    Every photo of shared trainA gives a crop except ``PHOTO_WITHOUT_FACE``, so the choice can be
    repeated without aligning all 586 (docs/default-model.md lists the same 40 names).
    """
    written = sorted(str(p) for p in photos.iterdir() if p.suffix == ".jpg" and p.name != PHOTO_WITHOUT_FACE)
    chosen = np.random.default_rng(HELDOUT_SEED).choice(len(written), size=HELDOUT_PHOTOS, replace=False)
    return [Path(written[int(i)]).name for i in sorted(chosen)]


@pytest.fixture(scope="session")
def heldout_data(
    shared_photos: Path, shared_test_cartoons: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The default model's held-out crops, aligned by p2c-prepare-data: testA (40) and testB (10)."""
    from p2c.training.preparation import PrepareConfig, prepare_dataset

    raw = tmp_path_factory.mktemp("heldout_raw")
    for name in heldout_photo_names(shared_photos):
        shutil.copy2(shared_photos / name, raw / name)
    data = tmp_path_factory.mktemp("heldout") / "data"
    prepare_dataset(PrepareConfig(str(raw), str(data), "A", split_test=HELDOUT_PHOTOS), False)
    prepare_dataset(PrepareConfig(str(shared_test_cartoons), str(data), "B", split_test=10), False)
    for empty in ("trainA", "trainB"):
        (data / empty).rmdir()  # all of them went to test
    assert len(list((data / "testA").iterdir())) == HELDOUT_PHOTOS
    assert len(list((data / "testB").iterdir())) == 10
    return data


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core CI box, two OpenMP threads per process thrash (10x slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny_train_config():
    """A factory of tiny, fast ``TrainConfig``s (96 px, ch 8, batch 1); keyword arguments override."""
    from dataclasses import replace

    from p2c.training.config import TrainConfig

    def make(data: Path, out: Path, **changes: object) -> TrainConfig:
        config = TrainConfig(
            data_dir=str(data),
            out_dir=str(out),
            iterations=4,
            batch_size=1,
            img_size=96,
            ch=8,
            num_workers=0,
            log_every=1,
            sample_every=100,
            save_every=100,
            sample_rows=2,
        )
        return replace(config, **changes)  # type: ignore[arg-type]

    return make
