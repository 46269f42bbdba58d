"""The embedded learning record store: xAPI 2.0.0 and 1.0.3 resources over the tool's database."""
