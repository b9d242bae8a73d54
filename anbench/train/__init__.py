"""Training: recipes and configs, LR schedule, progressive resizing, the loop, checkpoints,
distributed helpers, and the ``train`` stage of the work loop."""
