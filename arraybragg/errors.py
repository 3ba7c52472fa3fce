class InputError(ValueError):
    """Bad user input: one line naming the flag or file at fault."""
