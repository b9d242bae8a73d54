"""Network builders: the 2-D (ImageNet) AccelNet of spec section 2 and the 1-D one of section 2.7."""

from .accelnet import ACTIVATIONS, AccelNet, build_model
from ..seq1d import Seq1dShape, is_seq1d, to_seq1d
from .seq1d import AccelNet1d, build_seq1d_model

__all__ = ["ACTIVATIONS", "AccelNet", "AccelNet1d", "Seq1dShape", "build_model", "build_seq1d_model", "is_seq1d",
           "to_seq1d"]
