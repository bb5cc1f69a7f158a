"""The checker's parts: what a checked policy holds, and the checks of each section (see `checker.STAGES`)."""
