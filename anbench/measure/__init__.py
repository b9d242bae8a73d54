"""Measurement: timing loops over device runners, and environment capture."""
