"""npqsl-lti: the LTI 1.3 boundary and web shell of the NPQSL-aligned tool."""

from .app import create_app

__all__ = ["create_app"]
