"""Course rosters over NRPS, against a test platform over real HTTP, through the plugin API."""

from __future__ import annotations

import html
import re

import pytest

from lti_tool import launch as launches
from lti_tool.cache import cache
from plugins.contract import (
    ADMINISTRATOR,
    ASSESSOR,
    CANDIDATE,
    COACH,
    Member,
    Roster,
    RosterUnavailable,
    roster,
    roster_offered,
)

from .nrps_platform import NRPS_CLAIM, NRPS_SCOPE, NrpsPlatform
from .platform_emulator import ADMIN, INSTRUCTOR, LEARNER, MEMBERSHIP, LaunchSpec

MENTOR = MEMBERSHIP + "Mentor"


@pytest.fixture
def nrps_platform():
    platform = NrpsPlatform(page_size=2).start()
    yield platform
    platform.stop()


@pytest.fixture
def tool_for(make_tool, nrps_platform):
    """A tool registered with the NRPS platform; keyword arguments become setting overrides."""

    def build(**overrides):
        server = make_tool(**overrides)
        server.register(nrps_platform)
        return server

    return build


def cohort(platform: NrpsPlatform) -> None:
    """A course of seven: a coach, an assessor, an administrator, three candidates, one inactive."""
    platform.add_member("coach-1", [INSTRUCTOR], name="Chris Coach", email="chris@example.org")
    platform.add_member("assessor-1", ["urn:npqsl-lti:role:Assessor"], name="Ash Assessor")
    platform.add_member("admin-1", [ADMIN, INSTRUCTOR], name="Ada Admin")
    platform.add_member("cand-1", [LEARNER], name="Alex Candidate", email="alex@example.org")
    platform.add_member("cand-2", ["Learner"], name="Bea Candidate", email="bea@example.org")
    platform.add_member("cand-3", [LEARNER], name="Cy Candidate")
    platform.add_member("cand-4", [LEARNER], name="Dee Dropped", status="Inactive")


def launch_context(server, platform, browser, spec: LaunchSpec | None = None):
    """The LaunchContext of a real launch (login, platform authorization, id_token post)."""
    page = browser.launch(server, platform, spec or LaunchSpec(sub="coach-1", roles=[INSTRUCTOR]))
    assert page.status_code == 200, page.text[:500]
    token = html.unescape(re.search(r'href="/lti/activity\?launch=([^"]+)"', page.text).group(1))
    return launches.load(server.db, server.tool.launch_tokens.read(token))


def read(server, context, **kwargs) -> Roster:
    with server.app.test_request_context():
        return roster(context, **kwargs)


def refused(server, context, **kwargs) -> RosterUnavailable:
    with server.app.test_request_context(), pytest.raises(RosterUnavailable) as caught:
        roster(context, **kwargs)
    return caught.value


def cached_entry(server, context):
    with server.app.app_context():
        return cache.get(server.tool.rosters._cache_key(context.platform_pk, context.context_id))


def test_paging_collects_every_member_with_roles_mapped_as_at_launch(tool_for, nrps_platform, browser):
    server = tool_for()
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)

    result = read(server, context)

    assert [m.sub for m in result] == [
        "coach-1",
        "assessor-1",
        "admin-1",
        "cand-1",
        "cand-2",
        "cand-3",
        "cand-4",
    ]
    pages = [r for r in nrps_platform.nrps_requests if "since" not in r["args"]]
    assert len(pages) == 4  # seven members, two a page
    assert all(r["accept"] == "application/vnd.ims.lti-nrps.v2.membershipcontainer+json" for r in pages)
    assert [r["args"].get("offset") for r in pages] == [None, "2", "4", "6"]
    # One token, for exactly the read-only memberships scope.
    assert [t["scope"] for t in nrps_platform.token_requests] == [NRPS_SCOPE]

    assert result.find("coach-1").role == COACH
    assert result.find("assessor-1").role == ASSESSOR
    assert result.find("admin-1").role == ADMINISTRATOR
    assert result.find("cand-2").role == CANDIDATE  # short role names map too
    assert result.find("cand-1").lti_roles == (LEARNER,)
    assert result.find("nobody") is None
    assert [m.sub for m in result.candidates()] == ["cand-1", "cand-2", "cand-3"]
    assert [m.sub for m in result.candidates(include_inactive=True)][-1] == "cand-4"
    assert [m.sub for m in result.coaches()] == ["coach-1"]
    assert [m.sub for m in result.assessors()] == ["assessor-1"]
    assert [m.sub for m in result.administrators()] == ["admin-1"]
    assert result.find("cand-4").status == "Inactive" and not result.find("cand-4").active
    assert result.course_title == "NPQSL Cohort 2026"
    assert result.context_id == "course-1" and len(result) == 7
    # The roster's sub is the launch's sub: a coach finds themself.
    assert result.find(context.sub).display_name == "Chris Coach"


def test_a_second_call_within_the_ttl_makes_no_http_request(tool_for, nrps_platform, browser):
    server = tool_for()
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)
    first = read(server, context)
    requests_before = len(nrps_platform.nrps_requests)
    tokens_before = len(nrps_platform.token_requests)
    nrps_platform.add_member("late-1", [LEARNER])  # not seen until the TTL runs out

    again = read(server, context)

    assert again == first
    assert len(nrps_platform.nrps_requests) == requests_before
    assert len(nrps_platform.token_requests) == tokens_before
    # Another launch in the same course (another person) shares the cached roster.
    other = launch_context(server, nrps_platform, browser, LaunchSpec(sub="assessor-1", roles=[MENTOR]))
    assert read(server, other).find("late-1") is None
    assert len(nrps_platform.nrps_requests) == requests_before


def test_after_the_ttl_only_the_differences_are_fetched_and_applied(tool_for, nrps_platform, browser):
    server = tool_for()
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)
    rosters = server.tool.rosters
    now = [1_000_000.0]
    rosters.clock = lambda: now[0]
    read(server, context)

    nrps_platform.add_member("cand-5", [LEARNER], name="Eve New")  # added
    nrps_platform.update_member("cand-1", roles=[MENTOR])  # changed: now a coach
    nrps_platform.update_member("cand-2", status="Inactive")  # withdrawn
    nrps_platform.remove_member("cand-3")  # deleted
    before = len(nrps_platform.nrps_requests)
    now[0] += rosters.ttl + 1

    result = read(server, context)

    asked = nrps_platform.nrps_requests[before:]
    assert len(asked) == 2 and all("since" in r["args"] for r in asked)  # 4 changes, 2 a page
    assert result.find("cand-5").display_name == "Eve New"
    assert result.find("cand-1").role == COACH
    assert result.find("cand-2").status == "Inactive"
    assert result.find("cand-3") is None
    assert [m.sub for m in result.candidates()] == ["cand-5"]
    assert result.fetched_at == now[0]

    # Fresh again: no HTTP; and an explicit refresh with nothing changed costs one request.
    read(server, context)
    assert len(nrps_platform.nrps_requests) == before + 2
    refreshed = read(server, context, refresh=True)
    assert len(nrps_platform.nrps_requests) == before + 3
    assert [m.sub for m in refreshed] == [m.sub for m in result]


def test_without_differences_a_stale_roster_is_read_again_in_full(tool_for, nrps_platform, browser):
    nrps_platform.offer_differences = False
    server = tool_for()
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)
    now = [1_000_000.0]
    server.tool.rosters.clock = lambda: now[0]
    read(server, context)
    nrps_platform.remove_member("cand-3")
    before = len(nrps_platform.nrps_requests)
    now[0] += server.tool.rosters.ttl + 1

    result = read(server, context)

    assert result.find("cand-3") is None and len(result) == 6
    assert len(nrps_platform.nrps_requests) - before == 3  # six members, two a page
    assert all("since" not in r["args"] for r in nrps_platform.nrps_requests)


def test_a_refused_differences_link_falls_back_to_a_full_read(tool_for, nrps_platform, browser):
    server = tool_for()
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)
    now = [1_000_000.0]
    server.tool.rosters.clock = lambda: now[0]
    read(server, context)
    nrps_platform.rosters["course-1"].pop("cand-3")  # the platform "forgets" without a trace
    nrps_platform.changed_at["course-1"].pop("cand-3")
    original = nrps_platform._nrps

    def expire_differences(request):
        if "since" in request.args:
            return nrps_platform._json({"error": "differences expired"}, 410)
        return original(request)

    nrps_platform._nrps = expire_differences
    now[0] += server.tool.rosters.ttl + 1

    result = read(server, context)

    assert result.find("cand-3") is None and len(result) == 6


def test_names_are_kept_and_emails_dropped_by_default(tool_for, nrps_platform, browser):
    server = tool_for()
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)

    member = read(server, context).find("cand-1")

    assert member.name == "Alex Candidate" and member.given_name == "Alex"
    assert member.email is None
    stored = repr(cached_entry(server, context))
    assert "alex@example.org" not in stored and "chris@example.org" not in stored


def test_emails_are_kept_only_when_the_settings_say_so(tool_for, nrps_platform, browser):
    server = tool_for(privacy={"keep_emails": True, "keep_names": False})
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)

    member = read(server, context).find("cand-1")

    assert member.email == "alex@example.org"
    assert member.name is None and member.given_name is None and member.family_name is None
    assert member.display_name == "cand-1"
    assert "Alex Candidate" not in repr(cached_entry(server, context))


def test_a_platform_without_nrps_gets_a_clear_message(tool_for, nrps_platform, browser):
    nrps_platform.nrps_enabled = False
    server = tool_for()
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)
    with server.app.test_request_context():
        assert roster_offered(context) is False

    error = refused(server, context)

    assert error.code == "not_offered"
    assert "does not share its class list" in error.message
    assert "Names and Role Provisioning" in error.hint
    assert nrps_platform.nrps_requests == [] and nrps_platform.token_requests == []


def test_a_launch_outside_a_course_has_no_roster(tool_for, nrps_platform, browser):
    server = tool_for()
    context = launch_context(
        server, nrps_platform, browser, LaunchSpec(sub="coach-1", roles=[INSTRUCTOR], context=None)
    )

    error = refused(server, context)

    assert error.code == "no_course" and "not opened from a course" in error.message


def test_platform_down_gives_a_clear_message_and_caches_nothing(tool_for, nrps_platform, browser):
    server = tool_for()
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)
    with server.app.test_request_context():
        assert roster_offered(context) is True
    nrps_platform.available = False  # token and memberships endpoints answer 503

    error = refused(server, context)

    assert error.code == "platform_unreachable"
    assert "did not answer" in error.message and "try again" in error.message
    assert cached_entry(server, context) is None

    nrps_platform.available = True  # back up: the next call fetches everything
    assert len(read(server, context)) == 7


def test_a_platform_failing_mid_roster_caches_nothing(tool_for, nrps_platform, browser):
    server = tool_for()
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)
    original = nrps_platform._nrps

    def fail_on_page_three(request):
        if request.args.get("offset") == "4":
            return nrps_platform._json({"error": "overloaded"}, 502)
        return original(request)

    nrps_platform._nrps = fail_on_page_three

    assert refused(server, context).code == "platform_unreachable"
    assert cached_entry(server, context) is None


def test_a_stopped_platform_gives_the_same_clear_message(tool_for, nrps_platform, browser):
    server = tool_for()
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)
    nrps_platform.stop()
    nrps_platform._server.server_close()  # connection refused from now on

    error = refused(server, context)

    assert error.code == "platform_unreachable"
    assert cached_entry(server, context) is None


def test_a_stale_roster_is_not_served_while_the_platform_is_down(tool_for, nrps_platform, browser):
    server = tool_for()
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)
    now = [1_000_000.0]
    server.tool.rosters.clock = lambda: now[0]
    read(server, context)
    now[0] += server.tool.rosters.ttl + 1
    nrps_platform.available = False

    assert refused(server, context).code == "platform_unreachable"

    nrps_platform.available = True
    nrps_platform.remove_member("cand-1")
    before = len(nrps_platform.nrps_requests)
    assert read(server, context).find("cand-1") is None
    assert all("since" in r["args"] for r in nrps_platform.nrps_requests[before:])  # still cheap


def test_a_revoked_token_is_replaced_once(tool_for, nrps_platform, browser):
    server = tool_for()
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)
    read(server, context, refresh=True)
    nrps_platform.revoke_tokens()

    assert len(read(server, context, refresh=True)) == 7
    assert len(nrps_platform.token_requests) == 2


def test_a_platform_refusing_the_tool_gets_a_clear_message(tool_for, nrps_platform, browser):
    server = tool_for()
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)
    nrps_platform.client_id = "someone-else"  # the token endpoint no longer knows the tool

    error = refused(server, context)

    assert error.code == "refused" and "refused to share the class list" in error.message


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("not_json", "bad_answer"),
        ("loop", "bad_answer"),
        ("foreign_link", "bad_answer"),
        ("server_error", "platform_unreachable"),
    ],
)
def test_misbehaving_platforms_give_clear_errors(tool_for, nrps_platform, browser, fault, code):
    server = tool_for()
    cohort(nrps_platform)
    context = launch_context(server, nrps_platform, browser)
    nrps_platform.fault = fault

    error = refused(server, context)

    assert error.code == code and error.message
    assert cached_entry(server, context) is None
    # A "next" link to another host is refused before the bearer token is sent there.
    assert all(r["path"].startswith("/nrps/contexts/") for r in nrps_platform.nrps_requests)


def test_absurd_page_counts_and_sizes_are_refused(tool_for, nrps_platform, browser):
    server = tool_for(nrps={"max_pages": 3})
    cohort(nrps_platform)  # seven members, two a page: four pages
    context = launch_context(server, nrps_platform, browser)

    error = refused(server, context)
    assert error.code == "too_large" and "larger than this tool will read" in error.message
    assert len(nrps_platform.nrps_requests) == 3  # stopped at the limit, not after

    server.tool.rosters.max_pages = 100
    server.tool.rosters.max_page_bytes = 300  # a page of two members is bigger than this
    assert refused(server, context).code == "too_large"
    assert cached_entry(server, context) is None


def test_too_many_members_are_refused(tool_for, nrps_platform, browser):
    server = tool_for(nrps={"max_members": 5})
    cohort(nrps_platform)

    error = refused(server, launch_context(server, nrps_platform, browser))

    assert error.code == "too_large"


def test_members_the_platform_describes_badly_are_skipped(tool_for, nrps_platform, browser):
    server = tool_for()
    nrps_platform.add_member("cand-1", [LEARNER])
    nrps_platform.rosters["course-1"]["broken"] = {"user_id": "", "roles": "Learner", "status": "Active"}
    nrps_platform.changed_at["course-1"]["broken"] = nrps_platform.version
    nrps_platform.add_member("odd-1", [LEARNER], status="Suspended")
    context = launch_context(server, nrps_platform, browser)

    result = read(server, context)

    assert [m.sub for m in result] == ["cand-1", "odd-1"]
    assert result.find("odd-1").status == "Inactive"  # a status it cannot read is not Active


def test_a_claim_naming_another_course_is_refused(tool_for, nrps_platform, browser):
    server = tool_for()
    cohort(nrps_platform)
    nrps_platform.add_member("x-1", [LEARNER], context_id="course-2")
    spec = LaunchSpec(
        sub="coach-1",
        roles=[INSTRUCTOR],
        extra_claims={NRPS_CLAIM: {"context_memberships_url": nrps_platform.memberships_url("course-2")}},
    )
    context = launch_context(server, nrps_platform, browser, spec)

    assert refused(server, context).code == "bad_answer"


def test_member_and_roster_helpers_need_no_platform():
    members = (
        Member("c1", CANDIDATE, (LEARNER,), given_name="Kit", family_name="Lee"),
        Member("c2", COACH, (INSTRUCTOR,), status="Inactive"),
    )
    result = Roster(platform_pk=1, context_id="course-1", members=members, fetched_at=0.0)
    assert result.find("c1").display_name == "Kit Lee"
    assert result.coaches() == [] and result.coaches(include_inactive=True) == [members[1]]
    assert result.with_role(CANDIDATE, COACH) == [members[0]]
    assert result.active() == [members[0]] and list(result) == list(members)
    assert members[0].has_role(CANDIDATE, ASSESSOR) and not members[1].has_role(CANDIDATE)
