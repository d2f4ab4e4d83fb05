"""sb2bench: reproducibility and evaluation suite for SwiftBrush v2."""
from sb2bench import _torchvision_compat

_torchvision_compat.install()

__version__ = "0.1.0"
