"""``python -m anbench``: what torchrun launches (``torchrun ... -m anbench train ...``)."""

from .cli import main

main()
