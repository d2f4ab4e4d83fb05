"""sb2bench: reproducibility and evaluation suite for SwiftBrush v2."""
from sb2bench._infra import torchvision_compat

torchvision_compat.install()

__version__ = "0.1.0"
