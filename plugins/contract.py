"""The plugin contract: what a plugin declares, and what it receives from the core.

A plugin is one launchable activity type (a module, a diagnostic, the final assessment). It is
an object with the attributes and methods of ``Plugin`` below, exposed through the entry-point
group ``npqsl_lti.plugins``. It never imports pylti1p3 and never calls a VLE or an LRS: the core
does LTI and xAPI, and hands the plugin a ``LaunchContext``.

Course rosters (for coach and assessor views) come from the VLE's Names and Role Provisioning
service, fetched, cached and role-mapped by the core:

- ``roster(context, *, refresh=False) -> Roster``: the members of the launch's course. Cached
  for ``NPQSL_NRPS_ROSTER_TTL_SECONDS`` (10 minutes by default) and shared by every process.
  Raises ``RosterUnavailable`` when the VLE does not share its class list, is down, refuses or
  answers nonsense: show ``error.message`` to the person (``error.hint`` is for administrators,
  ``error.code`` for logs and tests). Never anything else.
- ``roster_offered(context) -> bool``: whether the launch's VLE shares its class list at all
  (no HTTP), to hide a link that would only lead to that message.
- ``Roster``: iterable ``Member``s in the VLE's order; ``len()``, ``.find(sub) -> Member | None``,
  ``.candidates()``, ``.coaches()``, ``.assessors()``, ``.administrators()``,
  ``.with_role(*roles)``, ``.active()`` (the role helpers give Active members unless called with
  ``include_inactive=True``), ``.fetched_at`` (Unix time), ``.course_title``.
- ``Member``: ``sub`` (the same id as ``LaunchContext.sub``), ``role`` (the tool role, mapped as
  at launch), ``lti_roles``, ``status`` ("Active" or "Inactive"), ``active``, ``name``,
  ``given_name``, ``family_name`` (None unless the tool keeps names), ``email`` (None unless it
  keeps emails), ``display_name`` (a name, or ``sub`` when there is none), ``has_role(*roles)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lti_tool.context import LaunchContext
from lti_tool.events import EVENT_KINDS, EventError, LearningEvent, Recording, Result, StateConflict
from lti_tool.roles import ADMINISTRATOR, ASSESSOR, CANDIDATE, COACH, ROLES
from lti_tool.roster import Member, Roster, RosterUnavailable

if TYPE_CHECKING:
    from flask import Blueprint

__all__ = [
    "ADMINISTRATOR",
    "ASSESSOR",
    "CANDIDATE",
    "COACH",
    "EVENT_KINDS",
    "KINDS",
    "EventError",
    "HeaderLink",
    "LaunchContext",
    "LearningEvent",
    "Member",
    "Offer",
    "Plugin",
    "PluginError",
    "Recording",
    "Result",
    "Roster",
    "RosterUnavailable",
    "StateConflict",
    "current_launch",
    "launch_reference",
    "record",
    "roster",
    "roster_offered",
    "validate_plugin",
]

# "programme": the programme dashboard, which reads the other plugins' progress.
KINDS = ("module", "diagnostic", "assessment", "programme", "example")
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
# Custom parameters the core sets on deep-linked resource links to route launches.
PLUGIN_PARAM = "npqsl_plugin"
ACTIVITY_PARAM = "npqsl_activity"


class PluginError(Exception):
    """A plugin declares something invalid; the message says what."""


@dataclass(frozen=True)
class Offer:
    """An activity a course designer can place by deep linking."""

    activity: str
    title: str
    description: str = ""
    # None: the activity is not graded and gets no gradebook column.
    score_maximum: float | None = None
    custom: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HeaderLink:
    """A link the core shows in the header of every page of a launch (see ``Plugin.header_link``)."""

    label: str
    url: str
    #: True on the page the link leads to (it is then marked ``aria-current="page"``).
    current: bool = False


class Plugin:
    """Base class for plugins; subclasses set the attributes and override the methods."""

    #: Unique, stable key: lower case letters, digits and hyphens (e.g. "closing-the-gap").
    key: str = ""
    #: What people see.
    title: str = ""
    #: One of KINDS.
    kind: str = ""
    version: str = "0.0.0"
    #: The xAPI activity type IRI of the plugin's activities.
    xapi_activity_type: str = "http://adlnet.gov/expapi/activities/lesson"
    #: Roles admitted to a launch of this plugin (the default: everyone in the course).
    launch_roles: frozenset[str] = frozenset(ROLES)

    def offers(self) -> Sequence[Offer]:
        """The activities this plugin offers for deep linking."""
        return ()

    def blueprint(self) -> Blueprint | None:
        """The plugin's own views, mounted under /p/<key>/ (None: no extra views)."""
        return None

    def launch(self, context: LaunchContext, activity: str) -> Any:
        """The response to a launch of one of this plugin's activities."""
        raise PluginError(f"plugin {self.key!r} does not implement launch()")

    def header_link(self, context: LaunchContext) -> HeaderLink | None:
        """A link for the header of every page of this launch, whichever plugin serves it, or None.

        Called inside the request, once per page: keep it cheap (no database, no HTTP).
        """
        return None

    def load_problems(self) -> Sequence[tuple[str, str, str]]:
        """Parts that failed to load while the rest serves (e.g. broken content packs).

        Each is (name, source, reason); the registry lists them with failed plugins, so
        ``npqsl-lti plugins list`` and the deep-linking picker show them to administrators.
        """
        return ()


def record(context: LaunchContext, plugin: Plugin):
    """Open a recording: change your state and emit LearningEvents; all commit together.

    Use it as ``with record(context, self) as rec: rec.save(...); rec.emit(LearningEvent(...))``.
    Nothing is sent to the VLE or the LRS inside the request; the core's outbox delivers it.
    """
    from flask import current_app

    return current_app.extensions["npqsl_lti"].events.record(context, plugin.key)


def launch_reference(context: LaunchContext) -> str:
    """The signed reference a page puts in its forms and links (field or query ``launch``).

    Inside an iframe the browser may refuse cookies; follow-up requests find their launch
    through this reference, and plugin views read it back with ``current_launch()``.
    """
    from flask import current_app

    return current_app.extensions["npqsl_lti"].launch_tokens.issue(context.launch_id)


def current_launch() -> LaunchContext:
    """The launch of the request being served, from its ``launch`` reference."""
    from lti_tool.views.activity import current_launch as read

    return read()


def roster(context: LaunchContext, *, refresh: bool = False) -> Roster:
    """The members of the launch's course, from the VLE (cached); raises RosterUnavailable.

    ``refresh=True`` asks the VLE again even while the cached copy is fresh (cheaply, through
    the VLE's differences link, when it offers one).
    """
    from flask import current_app

    return current_app.extensions["npqsl_lti"].rosters.roster(context, refresh=refresh)


def roster_offered(context: LaunchContext) -> bool:
    """Whether the launch's VLE shares its class list with the tool (checked without HTTP)."""
    from flask import current_app

    return current_app.extensions["npqsl_lti"].rosters.offered(context)


def validate_plugin(plugin: Any) -> None:
    """Raise PluginError naming the first thing a plugin declares wrongly."""
    key = getattr(plugin, "key", None)
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise PluginError(f"key {key!r} must match {KEY_PATTERN.pattern}")
    if not isinstance(getattr(plugin, "title", None), str) or not plugin.title.strip():
        raise PluginError("title must be a non-empty string")
    if getattr(plugin, "kind", None) not in KINDS:
        raise PluginError(f"kind {getattr(plugin, 'kind', None)!r} must be one of {', '.join(KINDS)}")
    roles = getattr(plugin, "launch_roles", None)
    if not roles or not set(roles) <= set(ROLES):
        raise PluginError(f"launch_roles {roles!r} must be a non-empty subset of {', '.join(ROLES)}")
    if not callable(getattr(plugin, "launch", None)) or not callable(getattr(plugin, "offers", None)):
        raise PluginError("launch() and offers() must be callable")
    seen: set[str] = set()
    for offer in plugin.offers():
        if not isinstance(offer, Offer):
            raise PluginError(f"offers() returned {offer!r}, not an Offer")
        if not offer.activity or offer.activity in seen:
            raise PluginError(f"offer activity {offer.activity!r} is empty or repeated")
        seen.add(offer.activity)
        if not offer.title.strip():
            raise PluginError(f"offer {offer.activity!r} has no title")
        if offer.score_maximum is not None and not offer.score_maximum > 0:
            raise PluginError(f"offer {offer.activity!r}: score_maximum must be > 0")
        if PLUGIN_PARAM in offer.custom or ACTIVITY_PARAM in offer.custom:
            raise PluginError(
                f"offer {offer.activity!r}: custom parameters {PLUGIN_PARAM}/{ACTIVITY_PARAM} are the core's"
            )
