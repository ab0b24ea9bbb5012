"""DynamoDB adapter: the ledger of restores (one claim per snapshot) and the helpers' turns."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from vss_restore.aws import error_code, throttling_is_transient

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RUNNING = "running"
EXECUTION_INDEX = "by-execution"
KEEP_SECONDS = 90 * 24 * 3600  # finished claims stay this long (TTL), then DynamoDB drops them
# A waiting task's token outlives the longest wait (Step Functions' tasks end sooner).
WAITING_SECONDS = 2 * 24 * 3600


def snapshot_key(snapshot_id: str) -> str:
    return f"snapshot#{snapshot_id}"


def helper_key(instance_id: str) -> str:
    return f"helper#{instance_id}"


def command_key(volume_id: str, action: str) -> str:
    """The disk tool's command of one action on one temporary volume (each runs once)."""
    return f"command#{volume_id}#{action}"


def consistent_key(snapshot_id: str) -> str:
    return f"consistent#{snapshot_id}"


@dataclass(frozen=True)
class Waiting:
    """A task waiting for an operation's end: its token, and what it waits for."""

    token: str
    execution: str
    operation: str  # the command ID, or the consistent snapshot's ID
    since: str  # when the operation started (ISO)


@dataclass(frozen=True)
class Claim:
    claimed: bool
    status: str  # the claim's status now: ours (running) or the holder's
    execution: str


class Ledger:
    def __init__(self, table: str, client: "DynamoDBClient | None" = None) -> None:
        self.table = table
        self._client = client

    @property
    def client(self) -> "DynamoDBClient":
        if self._client is None:
            self._client = boto3.client("dynamodb")
        return self._client

    def claim(self, snapshot_id: str, execution: str, now: int, lease_seconds: int) -> Claim:
        """Claim the snapshot for this execution unless another holds a live claim on it."""
        with throttling_is_transient():
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item={
                        "pk": {"S": snapshot_key(snapshot_id)},
                        "status": {"S": RUNNING},
                        "execution": {"S": execution},
                        "claimed_at": {"N": str(now)},
                        "lease_until": {"N": str(now + lease_seconds)},
                        "expires_at": {"N": str(now + KEEP_SECONDS)},
                    },
                    # Free, ours already (a retried step), failed before, or a dead lease.
                    ConditionExpression="attribute_not_exists(pk) OR #e = :me OR #s = :failed"
                    " OR (#s = :running AND lease_until < :now)",
                    ExpressionAttributeNames={"#e": "execution", "#s": "status"},
                    ExpressionAttributeValues={
                        ":me": {"S": execution},
                        ":failed": {"S": "failed"},
                        ":running": {"S": RUNNING},
                        ":now": {"N": str(now)},
                    },
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                held = self._item(snapshot_key(snapshot_id))
                return Claim(False, _text(held, "status"), _text(held, "execution"))
        return Claim(True, RUNNING, execution)

    def finish(self, snapshot_id: str, execution: str, status: str) -> None:
        """Record how our claim ended; a claim taken over by another execution stays theirs."""
        with throttling_is_transient():
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": snapshot_key(snapshot_id)}},
                    UpdateExpression="SET #s = :status",
                    ConditionExpression="#e = :me",
                    ExpressionAttributeNames={"#s": "status", "#e": "execution"},
                    ExpressionAttributeValues={":status": {"S": status}, ":me": {"S": execution}},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

    def note_helper(self, snapshot_id: str, execution: str, helper: str) -> None:
        """Remember which helper our claim uses, so that an aborted execution frees it."""
        with throttling_is_transient():
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": snapshot_key(snapshot_id)}},
                    UpdateExpression="SET helper = :h",
                    ConditionExpression="#e = :me",
                    ExpressionAttributeNames={"#e": "execution"},
                    ExpressionAttributeValues={":h": {"S": helper}, ":me": {"S": execution}},
                )
            except ClientError as exc:
                # The claim is another execution's now: nothing of ours to note.
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

    def take_turn(
        self, instance_id: str, holder: str, limit: int, now: int, lease_seconds: int
    ) -> bool:
        """One of the helper's `limit` turns for `holder`; False while all are taken."""
        key = {"pk": {"S": helper_key(instance_id)}}
        with throttling_is_transient():
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET holders = if_not_exists(holders, :none)",
                ExpressionAttributeValues={":none": {"M": {}}},
            )
            self._evict_expired(key, now)
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET holders.#me = :until",
                    ConditionExpression="attribute_exists(holders.#me) OR size(holders) < :limit",
                    ExpressionAttributeNames={"#me": holder},
                    ExpressionAttributeValues={
                        ":until": {"N": str(now + lease_seconds)},
                        ":limit": {"N": str(limit)},
                    },
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def give_back_turn(self, instance_id: str, holder: str) -> None:
        """Free the turn; giving back a turn never taken (a cleanup) is not an error."""
        with throttling_is_transient():
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": helper_key(instance_id)}},
                    UpdateExpression="REMOVE holders.#me",
                    ConditionExpression="attribute_exists(holders.#me)",
                    ExpressionAttributeNames={"#me": holder},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

    def holders(self, instance_id: str) -> dict[str, int]:
        item = self._item(helper_key(instance_id))
        held = item.get("holders", {}).get("M", {})
        return {name: int(value["N"]) for name, value in held.items()}

    def claims_of(self, execution: str) -> list[dict[str, str]]:
        """The claims an execution made (GSI by-execution): snapshot, status and helper."""
        with throttling_is_transient():
            found = self.client.query(
                TableName=self.table,
                IndexName=EXECUTION_INDEX,
                KeyConditionExpression="#e = :me",
                ExpressionAttributeNames={"#e": "execution"},
                ExpressionAttributeValues={":me": {"S": execution}},
            )["Items"]
        return [
            {
                "snapshot_id": _text(item, "pk").removeprefix("snapshot#"),
                "status": _text(item, "status"),
                "helper": _text(item, "helper"),
            }
            for item in found
        ]

    def claim_of(self, snapshot_id: str) -> dict[str, str]:
        """The snapshot's claim as it is now (consistent read); {} if it was never claimed."""
        item = self._item(snapshot_key(snapshot_id))
        if not item:
            return {}
        return {
            "snapshot_id": snapshot_id,
            "status": _text(item, "status"),
            "execution": _text(item, "execution"),
            "helper": _text(item, "helper"),
            "lease_until": str(item.get("lease_until", {}).get("N", "0")),
        }

    def wait_for(self, key: str, waiting: Waiting, now: int) -> None:
        """Store the token of the task that waits; a retried task's token replaces it."""
        with throttling_is_transient():
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": key},
                    "token": {"S": waiting.token},
                    # Not "execution": the by-execution index holds claims only.
                    "waiting_execution": {"S": waiting.execution},
                    "operation": {"S": waiting.operation},
                    "since": {"S": waiting.since},
                    "expires_at": {"N": str(now + WAITING_SECONDS)},
                },
            )

    def waiting(self, key: str) -> Waiting | None:
        item = self._item(key)
        if not item:
            return None
        return Waiting(
            _text(item, "token"),
            _text(item, "waiting_execution"),
            _text(item, "operation"),
            _text(item, "since"),
        )

    def _evict_expired(self, key: dict[str, Any], now: int) -> None:
        """Free turns whose holder never gave them back (an execution killed outright)."""
        held = self._item(key["pk"]["S"]).get("holders", {}).get("M", {})
        for holder, until in held.items():
            if int(until["N"]) < now:
                try:
                    self.client.update_item(
                        TableName=self.table,
                        Key=key,
                        UpdateExpression="REMOVE holders.#h",
                        ConditionExpression="holders.#h = :until",
                        ExpressionAttributeNames={"#h": holder},
                        ExpressionAttributeValues={":until": until},
                    )
                except ClientError as exc:
                    if error_code(exc) != "ConditionalCheckFailedException":
                        raise

    def _item(self, pk: str) -> dict[str, Any]:
        with throttling_is_transient():
            found = self.client.get_item(
                TableName=self.table, Key={"pk": {"S": pk}}, ConsistentRead=True
            )
        return dict(found.get("Item", {}))


def _text(item: dict[str, Any], name: str) -> str:
    return str(item.get(name, {}).get("S", ""))
