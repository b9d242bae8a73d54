"""Network builders. ``build_model`` is the 2-D (ImageNet) AccelNet of spec section 2."""

from .accelnet import ACTIVATIONS, AccelNet, build_model

__all__ = ["ACTIVATIONS", "AccelNet", "build_model"]
