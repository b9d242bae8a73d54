"""anbench plugin ``wandb``: the wandb tracker.

One wandb run per trained model, grouped per sweep: the configuration (effective recipe,
architecture, seeds, MACs/params), one history step per epoch, the final metrics, and the
checkpoint as a ``model`` artifact. The whole stored record also goes into the run summary
under ``anbench_record``, so ``anbench collect`` can rebuild the store from wandb alone.

Credentials: only ``WANDB_API_KEY`` or a netrc entry, read by wandb itself; nothing here
accepts, logs or stores a key. Without a key (or without a route to the server) the runs
are written offline, and the tracker says so once. Importing this module does not import
wandb.
"""

from __future__ import annotations

from anbench import hookimpl

from .tracker import WandbTracker

__version__ = "0.1.0"
__all__ = ["WandbTracker", "register_trackers"]


@hookimpl
def register_trackers(register):
    register(WandbTracker())
