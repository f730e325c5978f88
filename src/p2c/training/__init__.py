"""Training photo2cartoon's GAN: data preparation, networks, losses, trainer, evaluation."""

from p2c.training.config import LossWeights, TrainConfig
from p2c.training.discriminator import Discriminator
from p2c.training.evaluation import EvalReport, evaluate_generator
from p2c.training.export import export_checkpoint, export_generator
from p2c.training.gan import CartoonGan
from p2c.training.preparation import PrepareConfig, PrepareReport, prepare_dataset
from p2c.training.trainer import Trainer, TrainResult, train

__all__ = [
    "CartoonGan",
    "Discriminator",
    "EvalReport",
    "LossWeights",
    "PrepareConfig",
    "PrepareReport",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "evaluate_generator",
    "export_checkpoint",
    "export_generator",
    "prepare_dataset",
    "train",
]
