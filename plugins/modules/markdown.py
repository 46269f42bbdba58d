"""Unit content as HTML: Markdown rendered with raw HTML switched off.

Pack authors write Markdown; whatever HTML they type is shown as text, never run. Links open in
a new window (the page sits in the VLE's iframe) and only http(s) and mailto links are kept.
Headings move down one level when an author starts at ``#``: the page owns the level-1 heading.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from markupsafe import Markup

SAFE_SCHEMES = ("http://", "https://", "mailto:")


def _validate_link(url: str) -> bool:
    return url.lower().startswith(SAFE_SCHEMES) or url.startswith(("#", "/")) and not url.startswith("//")


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
    md.validateLink = _validate_link

    def link_open(renderer, tokens, idx, options, env):
        token = tokens[idx]
        href = token.attrGet("href") or ""
        external = not href.startswith("#")
        env.setdefault("links", []).append(external)
        if external:
            token.attrSet("target", "_blank")
            token.attrSet("rel", "noopener noreferrer")
        return renderer.renderToken(tokens, idx, options, env)

    def link_close(renderer, tokens, idx, options, env):
        external = env.get("links", [False]).pop() if env.get("links") else False
        note = '<span class="visually-hidden"> (opens in a new window)</span>' if external else ""
        return note + renderer.renderToken(tokens, idx, options, env)

    def heading_open(renderer, tokens, idx, options, env):
        token = tokens[idx]
        if token.tag == "h1":
            token.tag = "h2"
        return renderer.renderToken(tokens, idx, options, env)

    def heading_close(renderer, tokens, idx, options, env):
        if tokens[idx].tag == "h1":
            tokens[idx].tag = "h2"
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    md.add_render_rule("link_close", link_close)
    md.add_render_rule("heading_open", heading_open)
    md.add_render_rule("heading_close", heading_close)
    return md


def render(text: str) -> Markup:
    """Safe HTML for a unit's Markdown."""
    return Markup(_parser().render(text))
