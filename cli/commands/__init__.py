"""Sub-commands, one module per area; each exports `app` (a command group) and/or `COMMANDS`."""
