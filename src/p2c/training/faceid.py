"""Face ID loss: the cosine distance between face embeddings of a photo and of its cartoon.

photo2cartoon keeps the person recognisable by comparing face-recogniser embeddings of the input
photo and the generated cartoon. :class:`FaceIdNetwork` wraps a frozen recogniser so that it takes
our tensors as they are (N x 3 x H x W RGB in [-1, 1], photo2cartoon's aligned 256x256 crops or any
size), cuts the face region its backbone was trained on, resizes it differentiably and returns
L2-normalised embeddings; :func:`faceid_loss` is ``mean(1 - cosine)``.

Two backbones:

- ``dlib`` (the default, offline): dlib's ResNet face descriptor (128-d, 150x150 chips), read from
  ``dlib_face_recognition_resnet_model_v1.dat`` in the PyPI package ``face_recognition_models``
  and ported to PyTorch in :mod:`p2c.training.dlib_resnet`.
- ``mobilefacenet``: photo2cartoon's own ``model_mobilefacenet.pth`` (512-d, 112x112), cropped
  exactly as photo2cartoon's ``face_features.py`` does.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from p2c.errors import InputNotFoundError, InvalidInputError, MissingDependencyError

from .dlib_resnet import (
    DLIB_CHIP_SIZE,
    DlibResNet,
    is_dlib_safetensors,
    load_dlib_resnet,
    load_dlib_safetensors,
)
from .mobilefacenet import MOBILEFACENET_INPUT_SIZE, load_mobilefacenet

__all__ = [
    "DLIB_FACE_BOX",
    "MOBILEFACENET_FACE_BOX",
    "FaceBox",
    "FaceIdNetwork",
    "default_faceid_path",
    "faceid_loss",
    "load_faceid",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "face_recognition_models"
DEFAULT_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
# The first bytes of a dlib network trained with loss_metric: version 1, then the loss's name.
_DLIB_METRIC_HEADER = b"\x01\x01\x01\x0dloss_metric_2"


@dataclass(frozen=True)
class FaceBox:
    """A square face region of an aligned crop, as fractions of the crop's height.

    ``top`` and ``bottom`` are fractions of the height, ``centre_x`` a fraction of the width; the
    box is as wide as it is tall. Pixel bounds are truncated to integers as photo2cartoon does.
    ``size`` is the backbone's input side; ``align_corners`` and ``antialias`` choose the resize.
    """

    top: float
    bottom: float
    centre_x: float
    size: int
    align_corners: bool = False
    antialias: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.top < self.bottom <= 1.0:
            raise ValueError(
                f"FaceBox needs 0 <= top < bottom <= 1, got top={self.top}, bottom={self.bottom}"
            )
        if not 0.0 < self.centre_x < 1.0:
            raise ValueError(f"FaceBox.centre_x must lie in (0, 1), got {self.centre_x}")
        if self.size < 8:
            raise ValueError(f"FaceBox.size must be at least 8, got {self.size}")

    def pixels(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) in pixels of an image of that size, clamped to it."""
        top, bottom = int(height * self.top), int(height * self.bottom)
        side = bottom - top
        left = int(width * self.centre_x - side / 2)
        left = min(max(left, 0), max(width - side, 0))
        return top, bottom, left, min(left + side, width)

    def cut(self, images: torch.Tensor) -> torch.Tensor:
        """Crop and resize N x C x H x W images to N x C x size x size, differentiably."""
        top, bottom, left, right = self.pixels(images.shape[2], images.shape[3])
        face = images[:, :, top:bottom, left:right]
        if face.shape[2:] == (self.size, self.size):
            return face
        return F.interpolate(
            face,
            size=(self.size, self.size),
            mode="bilinear",
            align_corners=self.align_corners,
            antialias=self.antialias and face.shape[2] > self.size,
        )


# photo2cartoon's face_features.py on an h x w crop: top = h/2.1*(0.8-0.33), bottom = h - h/2.1*0.3,
# square, horizontally centred, bilinear with align_corners=True to 112x112.
MOBILEFACENET_FACE_BOX = FaceBox(
    top=(0.8 - 0.33) / 2.1,
    bottom=1.0 - 0.3 / 2.1,
    centre_x=0.5,
    size=MOBILEFACENET_INPUT_SIZE,
    align_corners=True,
    antialias=False,
)

# Where dlib's own face chip (get_face_chip_details, 150 px, padding 0.25, from its 5-point
# landmarks) lies inside our aligned 256 crop. Measured on the 59 of the first 60 photos of shared
# trainA in which dlib's HOG detector finds exactly one face: our crop from MediaPipe FaceMesh
# (landmarks68_from_mesh + crop_transform), dlib's chip mapped into it pixel by pixel (chips of
# coordinate images), a similarity fitted per face; medians: centre x 0.498 (std 0.050), centre y
# 0.594 (std 0.010), side 0.627 (std 0.042) of the crop, rotation 0.2 deg (std 2.6). Our crop is
# centred by construction, so centre x is 0.5. Checked on photos 100-159 (60 faces): the port's
# descriptor of this box against dlib's descriptor of its own chip is 0.23 apart on average, 0.52
# at worst (Euclidean; dlib's same-person threshold is 0.6), cosine 0.984 on average.
DLIB_FACE_BOX = FaceBox(top=0.594 - 0.627 / 2, bottom=0.594 + 0.627 / 2, centre_x=0.5, size=DLIB_CHIP_SIZE)


class FaceIdNetwork(nn.Module):
    """A frozen face recogniser taking RGB in [-1, 1]; ``forward`` returns N x D unit embeddings.

    It stays in eval mode even when a parent module calls ``train()``: its batch norms must keep
    their statistics, and nothing in it is trained.
    """

    def __init__(self, backbone: nn.Module, box: FaceBox, name: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.box = box
        self.name = name
        # dlib's network takes 0..255 pixel values; MobileFaceNet takes [-1, 1] as it is.
        self.to_backbone_range = isinstance(backbone, DlibResNet)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FaceIdNetwork:
        return super().train(False)

    @property
    def embedding_size(self) -> int:
        return 128 if isinstance(self.backbone, DlibResNet) else 512

    def descriptors(self, images: torch.Tensor) -> torch.Tensor:
        """The backbone's raw N x D descriptors, before normalisation.

        For dlib they are dlib's own descriptors (the port matches dlib to 1e-5), on the scale of
        its convention: Euclidean distance < 0.6 means the same person.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise InvalidInputError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
        face = self.box.cut(images)
        if self.to_backbone_range:
            face = (face + 1.0) * 127.5
        return self.backbone(face)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.descriptors(images), dim=1)


def faceid_loss(emb_a: torch.Tensor, emb_b: torch.Tensor) -> torch.Tensor:
    """photo2cartoon's Face ID loss: ``mean(1 - cosine(emb_a, emb_b))`` over the batch."""
    return (1.0 - F.cosine_similarity(emb_a, emb_b, dim=1)).mean()


def default_faceid_path() -> Path:
    """dlib's descriptor file inside ``face_recognition_models``; MissingDependencyError without it."""
    # find_spec instead of importing: the package's __init__ imports the deprecated pkg_resources.
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the default face-ID model needs the face_recognition_models package: "
            'pip install face_recognition_models (or pip install "p2c[faceid]"; or pass '
            "--faceid-weights model_mobilefacenet.pth)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / DEFAULT_MODEL_FILE
    if not path.is_file():
        raise MissingDependencyError(
            f"face_recognition_models is installed but {path.name} is missing from it: "
            "pip install --force-reinstall face_recognition_models"
        )
    return path


def _is_dlib_file(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(len(_DLIB_METRIC_HEADER)) == _DLIB_METRIC_HEADER


def load_faceid(path: str | Path | None = None, device: str | torch.device = "cpu") -> FaceIdNetwork:
    """Load a frozen :class:`FaceIdNetwork`.

    ``path`` None: dlib's descriptor from ``face_recognition_models``. Otherwise either
    photo2cartoon's ``model_mobilefacenet.pth``, a dlib ``.dat`` descriptor file, or the port's
    compact copy (``p2c.training.dlib_resnet.save_dlib_resnet``).
    """
    if path is None:
        path = default_faceid_path()
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"face-ID weights {path} do not exist: check --faceid-weights")
    if _is_dlib_file(path):
        network = FaceIdNetwork(load_dlib_resnet(path), DLIB_FACE_BOX, name="dlib")
    elif is_dlib_safetensors(path):
        network = FaceIdNetwork(load_dlib_safetensors(path), DLIB_FACE_BOX, name="dlib")
    else:
        network = FaceIdNetwork(load_mobilefacenet(path), MOBILEFACENET_FACE_BOX, name="mobilefacenet")
    logger.info("face-ID network: %s from %s", network.name, path)
    return network.to(device)
