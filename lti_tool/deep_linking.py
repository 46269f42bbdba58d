"""Deep Linking 2.0: the activities plugins offer, and the signed response that places them.

pylti1p3's DeepLink builds the response message; it is signed here with the key ring's loaded
key (pylti1p3 would re-parse a PEM). Every graded item carries a lineItem, so Moodle creates
the activity's gradebook column with the right maximum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem

from plugins.contract import ACTIVITY_PARAM, PLUGIN_PARAM, Offer

from .id_token import DEEP_LINKING_SETTINGS, DEPLOYMENT_ID
from .keys import KeyRing
from .platforms import PlatformInfo
from .plugin_registry import PluginRegistry
from .services import registration_for

DATA_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/data"


@dataclass(frozen=True)
class Choice:
    """One item on the picker: a plugin's offer, with the id the form uses."""

    id: str
    plugin_key: str
    plugin_title: str
    kind: str
    offer: Offer


class SelectionError(Exception):
    """The picker's form named nothing, too much, or something unknown."""


def choices(registry: PluginRegistry) -> list[Choice]:
    return [
        Choice(f"{plugin.key}:{offer.activity}", plugin.key, plugin.title, plugin.kind, offer)
        for plugin in registry
        for offer in plugin.offers()
    ]


def settings_of(claims: Mapping[str, Any]) -> dict[str, Any]:
    return dict(claims.get(DEEP_LINKING_SETTINGS) or {})


def accepts_multiple(claims: Mapping[str, Any]) -> bool:
    value = settings_of(claims).get("accept_multiple", False)
    return value is True or value == "true"


def select(available: Sequence[Choice], chosen_ids: Sequence[str], *, multiple: bool) -> list[Choice]:
    by_id = {c.id: c for c in available}
    unknown = [i for i in chosen_ids if i not in by_id]
    if unknown:
        raise SelectionError(f"Unknown activity {unknown[0]!r}: reload the page and choose again.")
    if len(chosen_ids) > 1 and not multiple:
        raise SelectionError("This course page accepts one activity at a time: choose one.")
    return [by_id[i] for i in dict.fromkeys(chosen_ids)]


def resource_for(choice: Choice, launch_url: str) -> DeepLinkResource:
    offer = choice.offer
    resource = DeepLinkResource()
    resource.set_url(launch_url)
    resource.set_title(offer.title)
    resource.set_custom_params({PLUGIN_PARAM: choice.plugin_key, ACTIVITY_PARAM: offer.activity, **offer.custom})
    if offer.score_maximum is not None:
        line_item = LineItem()
        line_item.set_score_maximum(offer.score_maximum)
        line_item.set_label(offer.title)
        line_item.set_resource_id(choice.id)
        line_item.set_tag(choice.kind)
        resource.set_lineitem(line_item)
    return resource


def response_jwt(
    keyring: KeyRing,
    platform: PlatformInfo,
    claims: Mapping[str, Any],
    chosen: Sequence[Choice],
    launch_url: str,
) -> str:
    """The signed LtiDeepLinkingResponse for the chosen items (none: the designer cancelled)."""
    link = DeepLink(registration_for(platform), claims[DEPLOYMENT_ID], settings_of(claims))
    message = link.get_message_jwt([resource_for(c, launch_url) for c in chosen])
    items = message["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    for item, choice in zip(items, chosen, strict=True):
        if choice.offer.description:
            item["text"] = choice.offer.description
    if message.get(DATA_CLAIM) is None:
        message.pop(DATA_CLAIM, None)
    return keyring.sign(message)


def return_url(claims: Mapping[str, Any]) -> str:
    return settings_of(claims)["deep_link_return_url"]
