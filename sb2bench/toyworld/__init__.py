"""The toy world: procedural captioned shapes, its model zoo ("toy hub") and their training; cli: its subcommands."""
