"""Built-in plugins, registered through the same manager as installed ones."""
