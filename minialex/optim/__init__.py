"""minialex.optim: the paper's momentum SGD and its learning-rate schedules."""
from .lr_scheduler import ConstantLR, CosineAnnealingLR, ReduceLROnPlateau, StepLR
from .sgd import SGD, caffe_param_groups

__all__ = ["SGD", "ConstantLR", "CosineAnnealingLR", "ReduceLROnPlateau", "StepLR", "caffe_param_groups"]
