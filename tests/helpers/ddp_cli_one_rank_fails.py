"""``anbench train ARGS`` as one DDP rank, with the synthetic dataset of
:mod:`rank_one_breaks` (rank 1's loader raises at its third train step). Launch one process
per rank with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set (as torchrun does)."""

import sys

from rank_one_breaks import BreaksOnRankOne

from anbench.builtin import synthetic
from anbench.cli import main

synthetic.SyntheticDataset = BreaksOnRankOne  # what the built-in plugin registers as "synthetic"
sys.argv = ["anbench", *sys.argv[1:]]
main()
