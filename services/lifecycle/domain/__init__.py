"""Pure lifecycle rules: no I/O, no framework, time comes from the caller."""
