"""The tool's blueprints: LTI endpoints, well-known documents and the activity shell."""
