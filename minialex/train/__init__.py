"""minialex.train: the trainer, its checkpoints, metrics and plots (``python -m minialex train``)."""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig
from .inference import evaluate_errors, load_model, predict_scores
from .trainer import NonFiniteLossError, Trainer

__all__ = ["CheckpointError", "ConfigError", "NonFiniteLossError", "TrainConfig", "Trainer", "load_checkpoint",
           "evaluate_errors", "load_model", "predict_scores", "save_checkpoint"]
