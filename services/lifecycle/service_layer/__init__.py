"""Handle one message: decode, load, decide, commit. Thin: rules live in the domain."""
