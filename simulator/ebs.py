"""EBS direct APIs' ListChangedBlocks, answered from the simulator's block model.

moto answers ListChangedBlocks only for snapshots written with StartSnapshot and
PutSnapshotBlock, and ignores its paging. Here the snapshots EC2 made are compared block by
block (simulator/disks.py says what writes what), as the EBS direct APIs reference,
ListChangedBlocks, documents it:
- the blocks "that are different between two ... snapshots of the same volume/snapshot
  lineage", in block index order (EBS User Guide, "Frequently asked questions for EBS
  direct APIs": unique and in numerical order), BlockSize 524288;
- MaxResults from 100 to 10,000 (else ValidationException); a page may hold fewer blocks;
  NextToken, when given, wins over StartingBlockIndex; no NextToken on the last page;
- snapshots of another lineage: ValidationException, reason UNRELATED_SNAPSHOTS;
- a snapshot that does not exist: ResourceNotFoundException (SNAPSHOT_NOT_FOUND); one not
  `completed`: refused ("The snapshot can be accessed only if it has a completed status",
  the FAQ; the error's exact reason is not documented: check);
- without `ebs:ListChangedBlocks` on both snapshots (IAM resource
  arn:aws:ec2:REGION::snapshot/ID; EBS User Guide, "Control access to EBS direct APIs
  using IAM"): AccessDeniedException. The operator is not judged by the simulator's IAM
  (it stands for an administrator), so a scenario or test names the snapshots its policy
  leaves out (World.ebs_refused). An encrypted snapshot also needs kms:Decrypt on its key:
  a key that is not enabled refuses it (DEPENDENCY_ACCESS_DENIED);
- the account's quota, "ListChangedBlocks requests per account": 50 per second, not
  adjustable (EBS User Guide, "Quotas for Amazon EBS"; check the figure in the Service
  Quotas console); a request past it fails with RequestThrottledException
  (ACCOUNT_THROTTLED), the throttling error the API's error model lists, which the SDKs
  retry (the reference's note: retry ThrottlingException and RequestThrottledException).
Each error carries the Reason its shape in the API's model (botocore's ebs service-2.json)
enumerates.
"""

import base64
import collections
from datetime import datetime, timedelta
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.ebs.responses import EBSResponse
from moto.ec2.models import ec2_backends

from simulator.disks import BLOCK_SIZE, DiskContent
from simulator.ec2 import key_state
from simulator.patching import Patches
from simulator.world import World, arn

REQUESTS_PER_SECOND = 50
MAX_RESULTS = (100, 10_000)
TOKENS_LAST = timedelta(days=7)  # block tokens are valid for seven days (the FAQ)


class EbsError(ServiceException):
    """An EBS direct APIs error, with the reason its error shape carries."""

    def __init__(self, code: str, message: str, reason: str) -> None:
        super().__init__(code, message)
        self.Reason = reason


class _Quota:
    """At most REQUESTS_PER_SECOND requests in any second of the account's (virtual) time."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.recent: collections.deque[datetime] = collections.deque()

    def take(self) -> None:
        now = self.world.clock.now()
        while self.recent and now - self.recent[0] >= timedelta(seconds=1):
            self.recent.popleft()
        if len(self.recent) >= REQUESTS_PER_SECOND:
            raise EbsError(
                "RequestThrottledException",
                "The request was denied due to request throttling.",
                "ACCOUNT_THROTTLED",
            )
        self.recent.append(now)


def install(patches: Patches, world: World) -> None:
    quota = _Quota(world)

    def list_changed_blocks(response: EBSResponse) -> ActionResult:
        quota.take()
        return ActionResult(_changed_blocks(world, response))

    patches.replace(EBSResponse, "list_changed_blocks", list_changed_blocks)


def _changed_blocks(world: World, response: EBSResponse) -> dict[str, Any]:
    first_id = response._get_param("FirstSnapshotId")
    second_id = response._get_param("SecondSnapshotId")
    max_results = response._get_param("MaxResults")
    start = response._get_param("StartingBlockIndex") or 0
    token = response._get_param("NextToken")
    if max_results is not None and not MAX_RESULTS[0] <= int(max_results) <= MAX_RESULTS[1]:
        raise _invalid("MaxResults must be between 100 and 10000", "INVALID_PARAMETER_VALUE")
    limit = int(max_results) if max_results is not None else MAX_RESULTS[1]
    if token:
        start = _page_start(token)
    second = _readable(world, response, second_id)
    first = _readable(world, response, first_id) if first_id else None
    if first is not None and first.lineage != second.lineage:
        raise _invalid(
            f"The snapshots {first_id} and {second_id} are not of the same volume lineage",
            "UNRELATED_SNAPSHOTS",
        )
    before = first.blocks() if first is not None else {}
    after = second.blocks()
    changed = sorted(
        index
        for index in set(before) | set(after)
        if before.get(index) != after.get(index) and index >= int(start)
    )
    page, rest = changed[:limit], changed[limit:]
    volume_size = ec2_backends[world.account_id][world.region].snapshots[second_id].volume_size
    answer: dict[str, Any] = {
        "ChangedBlocks": [
            {
                "BlockIndex": index,
                **({"FirstBlockToken": _token(first_id, before[index])} if index in before else {}),
                **({"SecondBlockToken": _token(second_id, after[index])} if index in after else {}),
            }
            for index in page
        ],
        "ExpiryTime": world.clock.now() + TOKENS_LAST,
        "VolumeSize": int(volume_size),
        "BlockSize": BLOCK_SIZE,
    }
    if rest:
        answer["NextToken"] = base64.b64encode(f"next:{rest[0]}".encode()).decode()
    return answer


def _readable(world: World, response: EBSResponse, snapshot_id: str) -> DiskContent:
    ec2 = ec2_backends[world.account_id][world.region]
    snapshot = ec2.snapshots.get(snapshot_id)
    content = world.snapshot_contents.get(snapshot_id)
    if snapshot is None or content is None:
        raise EbsError(
            "ResourceNotFoundException",
            f"The snapshot '{snapshot_id}' does not exist.",
            "SNAPSHOT_NOT_FOUND",
        )
    if snapshot_id in world.ebs_refused:
        raise EbsError(
            "AccessDeniedException",
            "User is not authorized to perform: ebs:ListChangedBlocks on resource: "
            f"{arn(world, 'snapshot', snapshot_id)}",
            "UNAUTHORIZED_ACCOUNT",
        )
    if snapshot.encrypted and key_state(ec2, snapshot.kms_key_id) not in ("Enabled", ""):
        raise EbsError(
            "AccessDeniedException",
            f"The KMS key of snapshot {snapshot_id} cannot be used to decrypt it",
            "DEPENDENCY_ACCESS_DENIED",
        )
    if world.snapshot_state(snapshot_id) != "completed":
        raise _invalid(f"The snapshot '{snapshot_id}' is not completed", "INVALID_SNAPSHOT_ID")
    return content


def _page_start(token: str) -> int:
    try:
        kind, _, index = base64.b64decode(token).decode().partition(":")
        if kind == "next":
            return int(index)
    except ValueError:
        pass
    raise _invalid("The pagination token is not valid", "INVALID_PAGE_TOKEN")


def _token(snapshot_id: str | None, write: int) -> str:
    return base64.b64encode(f"{snapshot_id}:{write}".encode()).decode()


def _invalid(message: str, reason: str) -> EbsError:
    return EbsError("ValidationException", message, reason)
