"""minialex.models: AlexNet variants (see ``alexnet.py``)."""
from .alexnet import INPUT_SIZE, VARIANTS, AlexNet, alexnet, from_config, initialize

__all__ = ["INPUT_SIZE", "VARIANTS", "AlexNet", "alexnet", "from_config", "initialize"]
