"""Property-based tests (hypothesis): slower than unit tests, run beside them."""
