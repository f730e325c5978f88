"""The dlib port's compact FP16 copy, which travels to GPU machines that lack face_recognition_models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from p2c.training.dataset import to_tensor


def test_fp16_copy_gives_the_same_descriptors_at_half_the_size(tmp_path: Path, astronaut: np.ndarray) -> None:
    import cv2

    from p2c.training.dlib_resnet import save_dlib_resnet
    from p2c.training.faceid import default_faceid_path, load_faceid

    original = load_faceid(None)
    path = save_dlib_resnet(original.backbone, tmp_path / "dlib_fp16.safetensors")
    assert path.stat().st_size < default_faceid_path().stat().st_size / 1.9
    compact = load_faceid(path)
    assert compact.name == "dlib"
    images = torch.stack([to_tensor(cv2.resize(astronaut, (256, 256))), to_tensor(astronaut[::2, ::2])])
    with torch.no_grad():
        cosine = F.cosine_similarity(original(images), compact(images), dim=1)
    assert (cosine > 0.9999).all()


def test_a_safetensors_file_of_something_else_is_not_taken_for_the_port(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from p2c.training.dlib_resnet import is_dlib_safetensors

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    (tmp_path / "text.safetensors").write_text("not a tensor file")
    assert not is_dlib_safetensors(tmp_path / "other.safetensors")
    assert not is_dlib_safetensors(tmp_path / "text.safetensors")
