"""npqsl-lti: the LTI 1.3 boundary and web shell of the NPQSL-aligned tool."""


def create_app(*args, **kwargs):
    """Build the Flask app (imported lazily so the CLI starts without loading the web stack)."""
    from .app import create_app as factory

    return factory(*args, **kwargs)


__all__ = ["create_app"]
