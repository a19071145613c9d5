"""Pure record handling on the worker: a finished call into the bytes a destination gets."""
