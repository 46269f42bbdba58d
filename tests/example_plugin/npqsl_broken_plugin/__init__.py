"""A plugin that fails to import, to prove the tool starts without it."""

raise ImportError("this plugin's dependency is missing")
