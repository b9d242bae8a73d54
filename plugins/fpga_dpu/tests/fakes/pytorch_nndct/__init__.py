"""Fake of vai_q_pytorch (``pytorch_nndct``); see ../README.md."""

__version__ = "3.0.0+fake"
