"""The words statements are made of: verbs, activity types, extensions and the tool's own IRIs.

Verbs are registered ones (ADL's vocabulary; Activity Streams for "submitted", which ADL does not
define), so an analytics team's existing reports recognise them. What the tool mints itself — the
NPQSL profile and its concepts, the qualification, the courses and plugin activities — lives under
its public base URL (``NPQSL_PUBLIC_URL``). An installation without one uses ``FALLBACK_BASE``, a
reserved ``.invalid`` host that says plainly that the IRIs were minted before a URL was set; set
the URL before the first launch, because activity IRIs do not change afterwards.

The profile document (``config/xapi-profile.jsonld``) is written under ``FALLBACK_BASE`` too and
served with that prefix replaced by the installation's base, so the file, the served profile and
the statements always agree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from lti_tool.settings import Settings

FALLBACK_BASE = "https://npqsl-lti.invalid"

ADL_VERBS = "http://adlnet.gov/expapi/verbs/"
ADL_ACTIVITIES = "http://adlnet.gov/expapi/activities/"


@dataclass(frozen=True)
class Verb:
    iri: str
    display: str


# One verb per learning event kind (lti_tool.events.EVENT_KINDS), plus "voided" for the LRS.
VERBS: dict[str, Verb] = {
    "launched": Verb(ADL_VERBS + "launched", "launched"),
    "initialized": Verb(ADL_VERBS + "initialized", "initialized"),
    "experienced": Verb(ADL_VERBS + "experienced", "experienced"),
    "progressed": Verb(ADL_VERBS + "progressed", "progressed"),
    "answered": Verb(ADL_VERBS + "answered", "answered"),
    "completed": Verb(ADL_VERBS + "completed", "completed"),
    "submitted": Verb("http://activitystrea.ms/schema/1.0/submit", "submitted"),
    "scored": Verb(ADL_VERBS + "scored", "scored"),
    "passed": Verb(ADL_VERBS + "passed", "passed"),
    "failed": Verb(ADL_VERBS + "failed", "failed"),
    "attended": Verb(ADL_VERBS + "attended", "attended"),
    "commented": Verb(ADL_VERBS + "commented", "commented"),
}
VOIDED = Verb(ADL_VERBS + "voided", "voided")

# Registered activity types the tool uses as they are.
COURSE_TYPE = ADL_ACTIVITIES + "course"
MODULE_TYPE = ADL_ACTIVITIES + "module"
LESSON_TYPE = ADL_ACTIVITIES + "lesson"
ASSESSMENT_TYPE = ADL_ACTIVITIES + "assessment"
PROFILE_TYPE = ADL_ACTIVITIES + "profile"

# The tool's own concepts, as paths under ``<base>/xapi/profile/``.
QUALIFICATION_TYPE_PATH = "activity-types/qualification"
EXTENSION_PATHS = {
    "lti_context_id": "extensions/lti-context-id",
    "lti_deployment_id": "extensions/lti-deployment-id",
    "lti_resource_link_id": "extensions/lti-resource-link-id",
    "launch_id": "extensions/launch-id",
    "plugin": "extensions/plugin",
    "actor_email": "extensions/actor-email",
    "event_data": "extensions/event-data",
}

QUALIFICATION_NAME = "National Professional Qualification for Senior Leadership (NPQSL)"
QUALIFICATION_DESCRIPTION = (
    "The NPQSL programme: its modules, diagnostic tools and final assessment project, "
    "delivered inside the school's VLE."
)
# The tool's own account: the authority of statements it stores in its embedded LRS.
TOOL_ACCOUNT_NAME = "npqsl-lti"

# uuid5 namespaces: fixed for ever, or every id derived from them changes.
STATEMENT_NAMESPACE = uuid.UUID("6f3b0f5e-2a41-5b8e-9f5c-1d7e0c9b4a21")
REGISTRATION_NAMESPACE = uuid.UUID("0c2d8e47-93b5-5f1a-8e6d-4b7a2f1c9e30")
COURSE_NAMESPACE = uuid.UUID("b8e1f4a2-7c3d-5e9f-a0b1-2c3d4e5f6a7b")


def statement_id(event_id: str) -> str:
    """The statement of a learning event: the same id however often it is sent."""
    return str(uuid.uuid5(STATEMENT_NAMESPACE, event_id))


def registration(issuer: str, context_id: str | None, sub: str) -> str:
    """A candidate's programme enrolment: one per person per platform and course.

    Derived, not stored: the same (issuer, course, person) gives the same UUID in every process
    and on every re-send, with no table to keep in step with the VLE's enrolments.
    """
    return str(uuid.uuid5(REGISTRATION_NAMESPACE, "\n".join((issuer, context_id or "", sub))))


def _segments(path: str) -> str:
    return "/".join(quote(part, safe="-._~") for part in path.split("/"))


@dataclass(frozen=True)
class Vocabulary:
    """The IRIs of one installation: everything the tool mints, under its base URL."""

    base: str
    language: str = "en-GB"

    @classmethod
    def from_settings(cls, settings: Settings) -> Vocabulary:
        return cls(settings.public_url.rstrip("/") or FALLBACK_BASE, settings.xapi.language)

    def lang(self, text: str) -> dict[str, str]:
        """A language map in the tool's language."""
        return {self.language: text}

    # -- the profile -----------------------------------------------------------------------
    @property
    def profile(self) -> str:
        return f"{self.base}/xapi/profile"

    @property
    def profile_version(self) -> str:
        """What statements name in context.contextActivities.category."""
        return f"{self.profile}/v1"

    def concept(self, path: str) -> str:
        return f"{self.profile}/{path}"

    @property
    def qualification_type(self) -> str:
        return self.concept(QUALIFICATION_TYPE_PATH)

    def extension(self, key: str) -> str:
        """A context extension IRI by its short name (see EXTENSION_PATHS)."""
        return self.concept(EXTENSION_PATHS[key])

    # -- activities ------------------------------------------------------------------------
    @property
    def qualification(self) -> str:
        return f"{self.base}/activities/qualifications/npqsl"

    def course(self, issuer: str, context_id: str) -> str:
        """The VLE course (LTI context) as an activity: opaque, stable, one per platform course."""
        return f"{self.base}/activities/courses/{uuid.uuid5(COURSE_NAMESPACE, issuer + chr(10) + context_id)}"

    def plugin_activity(self, plugin_key: str, activity: str) -> str:
        """A plugin's activity; ``activity`` may be a path (``module/unit/task``)."""
        return f"{self.base}/activities/plugins/{quote(plugin_key, safe='-')}/{_segments(activity)}"

    def tool_agent(self, name: str) -> dict:
        """The tool itself, as the authority of the statements it stores."""
        return {"objectType": "Agent", "name": name, "account": {"homePage": self.base, "name": TOOL_ACCOUNT_NAME}}
