"""What a workflow input asks for: the snapshots to restore, from any of its shapes."""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from vss_restore.errors import InvalidRequest
from vss_restore.state import INSTANCE_ID, SNAPSHOT_ID

SINGLE_DETAIL_TYPE = "EBS Snapshot Notification"
MULTI_DETAIL_TYPE = "EBS Multi-Volume Snapshots Completion Status"
RESTORED_EVENTS = frozenset({"createSnapshot", "copySnapshot"})


@dataclass(frozen=True)
class RestoreRequest:
    snapshot_id: str
    helper_instance_id: str = ""
    keep_volume: bool = False
    # Restore an already verified snapshot again (the weekly sample, reverify.py): no
    # consistent snapshot is kept, and the outcome goes to the re-verify tags, not the verdict.
    reverify: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def snapshot_id_of(reference: Any) -> str:
    """A snapshot ID from an ID or an ARN (AWS's sample ARNs are malformed: take the tail)."""
    if not isinstance(reference, str):
        raise InvalidRequest(f"snapshot reference {reference!r} is not a string")
    snapshot_id = reference.rsplit("/", 1)[-1]
    if not SNAPSHOT_ID.match(snapshot_id):
        raise InvalidRequest(f"{reference!r} does not name an EBS snapshot")
    return snapshot_id


def parse_request(event: Mapping[str, Any]) -> list[RestoreRequest]:
    """The restores an EventBridge event or an on-demand input asks for."""
    if not isinstance(event, Mapping):
        raise InvalidRequest("the input is not a JSON object")
    detail_type = event.get("detail-type")
    if detail_type == SINGLE_DETAIL_TYPE:
        return _single(event)
    if detail_type == MULTI_DETAIL_TYPE:
        return _multi(event)
    if detail_type is not None:
        raise InvalidRequest(f"events of type {detail_type!r} are not restored")
    return [_on_demand(event)]


def _detail(event: Mapping[str, Any]) -> Mapping[str, Any]:
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise InvalidRequest("the event has no detail object")
    return detail


def _single(event: Mapping[str, Any]) -> list[RestoreRequest]:
    detail = _detail(event)
    if detail.get("event") not in RESTORED_EVENTS or detail.get("result") != "succeeded":
        raise InvalidRequest(
            f"snapshot event {detail.get('event')!r} with result {detail.get('result')!r} "
            "is not a completed snapshot"
        )
    return [RestoreRequest(snapshot_id_of(detail.get("snapshot_id")))]


def _multi(event: Mapping[str, Any]) -> list[RestoreRequest]:
    snapshots = _detail(event).get("snapshots")
    if not isinstance(snapshots, list):
        raise InvalidRequest("the multi-volume event has no snapshots list")
    requests = [
        RestoreRequest(snapshot_id_of(item.get("snapshot_id")))
        for item in snapshots
        if isinstance(item, Mapping) and item.get("status") == "completed"
    ]
    if not requests:
        raise InvalidRequest("the multi-volume event names no completed snapshot")
    return requests


def _on_demand(event: Mapping[str, Any]) -> RestoreRequest:
    unknown = set(event) - {"snapshot_id", "helper_instance_id", "keep_volume", "reverify"}
    if unknown:
        raise InvalidRequest(f"unknown input fields: {', '.join(sorted(unknown))}")
    helper = event.get("helper_instance_id", "") or ""
    if helper and (not isinstance(helper, str) or not INSTANCE_ID.match(helper)):
        raise InvalidRequest(f"helper_instance_id {helper!r} is not an instance ID")
    keep_volume = event.get("keep_volume", False)
    if not isinstance(keep_volume, bool):
        raise InvalidRequest("keep_volume must be true or false")
    reverify = event.get("reverify", False)
    if not isinstance(reverify, bool):
        raise InvalidRequest("reverify must be true or false")
    return RestoreRequest(snapshot_id_of(event.get("snapshot_id")), helper, keep_volume, reverify)
