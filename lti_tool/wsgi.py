"""WSGI entry point for servers run by hand: ``gunicorn 'lti_tool.wsgi:app'``."""

from .app import create_app

app = create_app()
