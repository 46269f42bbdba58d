"""xAPI vocabulary, statement building and the embedded learning record store."""
