"""LTI roles mapped, once and only here, onto the tool's four roles.

Views name the roles they admit (candidate, coach, assessor, administrator); nothing else in
the code reads the raw LTI role URIs.
"""

from __future__ import annotations

from collections.abc import Iterable

CANDIDATE = "candidate"
COACH = "coach"
ASSESSOR = "assessor"
ADMINISTRATOR = "administrator"
ROLES = (CANDIDATE, COACH, ASSESSOR, ADMINISTRATOR)

_CONTEXT = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
_INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
_SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"

# A custom role a platform can send to mark assessors (also accepted as a short name).
ASSESSOR_ROLE_URIS = {"urn:npqsl-lti:role:Assessor", "Assessor"}

_ADMIN = {
    _SYSTEM + "Administrator",
    _SYSTEM + "SysAdmin",
    _INSTITUTION + "Administrator",
    _CONTEXT + "Administrator",
}
_COACH = {
    _CONTEXT + "Instructor",
    _CONTEXT + "Mentor",
    _CONTEXT + "ContentDeveloper",
    _CONTEXT + "Instructor#TeachingAssistant",
    _CONTEXT + "Instructor#Grader",
    "Instructor",
    "TeachingAssistant",
    "Mentor",
}
_CANDIDATE = {
    _CONTEXT + "Learner",
    _CONTEXT + "Learner#Learner",
    "Learner",
    _INSTITUTION + "Student",
}


def map_roles(lti_roles: Iterable[str]) -> str:
    """The single tool role for a launch: the most privileged one the LTI roles grant.

    A person with no recognised role (for example a guest) is a candidate: they see only
    their own work, which is the least they can be given.
    """
    roles = set(lti_roles or [])
    if roles & _ADMIN:
        return ADMINISTRATOR
    if roles & ASSESSOR_ROLE_URIS:
        return ASSESSOR
    if roles & _COACH:
        return COACH
    return CANDIDATE
