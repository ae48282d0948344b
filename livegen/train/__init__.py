"""Training: `train(data_dir, out_dir, ...)`, settings in `TrainConfig`; DDP under torchrun."""

from livegen.train.config import TrainConfig
from livegen.train.loop import train

__all__ = ["TrainConfig", "train"]
