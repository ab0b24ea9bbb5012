"""DynamoDB adapter: the ledger of restores (one claim per snapshot) and the helpers' turns."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from vss_restore.aws import error_code, throttling_is_transient

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RUNNING = "running"
EXECUTION_INDEX = "by-execution"
KEEP_SECONDS = 90 * 24 * 3600  # finished claims stay this long (TTL), then DynamoDB drops them
# One item: the instances the hourly look last reported, so that it alerts on changes only.
UNVERIFIED_INSTANCES_KEY = "unverified-instances"
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
class Turns:
    holders: dict[str, int]  # holder -> when its turn lapses (epoch s)
    waiting: dict[str, int]  # holder -> when it first queued (epoch ms)
    tokens: dict[str, str]  # holder -> the task token its waiting task gave

    def next_in_line(self) -> tuple[str, str] | None:
        """The oldest waiter with a live task token and no turn yet: (holder, token)."""
        line = sorted(
            (since, holder)
            for holder, since in self.waiting.items()
            if holder in self.tokens and holder not in self.holders
        )
        return (line[0][1], self.tokens[line[0][1]]) if line else None


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

    def claim(
        self,
        snapshot_id: str,
        execution: str,
        now: int,
        lease_seconds: int,
        *,
        again: bool = False,
    ) -> Claim:
        """Claim the snapshot for this execution unless another holds a live claim on it;
        `again` (a re-verification) may also take the claim of a verified restore."""
        condition = (
            "attribute_not_exists(pk) OR #e = :me OR #s = :failed"
            " OR (#s = :running AND lease_until < :now)"
        )
        values = {
            ":me": {"S": execution},
            ":failed": {"S": "failed"},
            ":running": {"S": RUNNING},
            ":now": {"N": str(now)},
        }
        if again:
            condition += " OR #s = :verified"
            values[":verified"] = {"S": "verified"}
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
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#e": "execution", "#s": "status"},
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                held = self._item(snapshot_key(snapshot_id))
                return Claim(False, _text(held, "status"), _text(held, "execution"))
        return Claim(True, RUNNING, execution)

    def finish(
        self,
        snapshot_id: str,
        execution: str,
        status: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record how our claim ended, and the verdict's details (its rule, each volume)
        beside it: they outlive the execution's history. A claim taken over by another
        execution stays theirs."""
        update = "SET #s = :status"
        values: dict[str, Any] = {":status": {"S": status}, ":me": {"S": execution}}
        if details is not None:
            update += ", verdict = :verdict"
            values[":verdict"] = TypeSerializer().serialize(details)
        with throttling_is_transient():
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": snapshot_key(snapshot_id)}},
                    UpdateExpression=update,
                    ConditionExpression="#e = :me",
                    ExpressionAttributeNames={"#s": "status", "#e": "execution"},
                    ExpressionAttributeValues=values,
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

    # -- the helpers' turns: who holds one, who waits for one, and their task tokens --------
    # One item per helper: `holders` {holder: lease end}, `waiting` {holder: when it first
    # queued, ms}, `tokens` {holder: the task token of its waiting task}. A task token is up
    # to 2 KiB (real ones are shorter), so the 400 KB item holds at least ~190 waiters.

    def turns(self, instance_id: str, now: int, waiting_lease_seconds: int) -> Turns:
        """The helper's turns as they are now, after freeing lapsed ones (a dead holder)."""
        key = {"pk": {"S": helper_key(instance_id)}}
        item = self._item(key["pk"]["S"])
        with throttling_is_transient():
            if not all(name in item for name in ("holders", "waiting", "tokens")):
                # The helper's first turn (or an item from before the line): its three maps.
                self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET holders = if_not_exists(holders, :none), waiting ="
                    " if_not_exists(waiting, :none), tokens = if_not_exists(tokens, :none)",
                    ExpressionAttributeValues={":none": {"M": {}}},
                )
                item = self._item(key["pk"]["S"])
            turns = _turns(item)
            lapsed = [("holders", h, until) for h, until in turns.holders.items() if until < now]
            lapsed += [
                ("waiting", h, since)
                for h, since in turns.waiting.items()
                if since < (now - waiting_lease_seconds) * 1000
            ]
            for field, holder, value in lapsed:
                self._remove_if(key, field, holder, value)
        return _turns(self._item(key["pk"]["S"])) if lapsed else turns

    def queue_for_turn(self, instance_id: str, holder: str, token: str, since_ms: int) -> None:
        """Wait in line with this task token; a holder queued before keeps its place."""
        with throttling_is_transient():
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": helper_key(instance_id)}},
                UpdateExpression="SET waiting.#me = if_not_exists(waiting.#me, :since),"
                " tokens.#me = :token",
                ExpressionAttributeNames={"#me": holder},
                ExpressionAttributeValues={":since": {"N": str(since_ms)}, ":token": {"S": token}},
            )

    def grant_turn(
        self, instance_id: str, holder: str, token: str, limit: int, lease_until: int
    ) -> bool:
        """Give a free turn to a waiter whose token is still `token`; False if either changed."""
        with throttling_is_transient():
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": helper_key(instance_id)}},
                    UpdateExpression="SET holders.#w = :until",
                    ConditionExpression="size(holders) < :limit"
                    " AND attribute_not_exists(holders.#w) AND tokens.#w = :token",
                    ExpressionAttributeNames={"#w": holder},
                    ExpressionAttributeValues={
                        ":until": {"N": str(lease_until)},
                        ":limit": {"N": str(limit)},
                        ":token": {"S": token},
                    },
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def stop_waiting(self, instance_id: str, holder: str, token: str = "") -> None:
        """Take the holder out of the line; with `token`, only if its token is still that one."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"pk": {"S": helper_key(instance_id)}},
            "UpdateExpression": "REMOVE waiting.#me, tokens.#me",
            "ExpressionAttributeNames": {"#me": holder},
        }
        if token:
            request["ConditionExpression"] = "tokens.#me = :token"
            request["ExpressionAttributeValues"] = {":token": {"S": token}}
        with throttling_is_transient():
            try:
                self.client.update_item(**request)
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

    def take_back_grant(self, instance_id: str, holder: str, token: str, lease_until: int) -> None:
        """Undo a grant whose token was dead, unless the waiter has since come for its turn
        (a new token, or none once it found the turn its own): it keeps its place in line."""
        with throttling_is_transient():
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": helper_key(instance_id)}},
                    UpdateExpression="REMOVE holders.#w, tokens.#w",
                    ConditionExpression="holders.#w = :until AND tokens.#w = :token",
                    ExpressionAttributeNames={"#w": holder},
                    ExpressionAttributeValues={
                        ":until": {"N": str(lease_until)},
                        ":token": {"S": token},
                    },
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

    def give_back_turn(self, instance_id: str, holder: str) -> None:
        """Free the holder's turn and its place in line; either may be missing (a cleanup)."""
        with throttling_is_transient():
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": helper_key(instance_id)}},
                    UpdateExpression="REMOVE holders.#me, waiting.#me, tokens.#me",
                    # The helper's item is there, with its three maps (made by `turns`).
                    ConditionExpression="attribute_exists(holders) AND attribute_exists(waiting)"
                    " AND attribute_exists(tokens)",
                    ExpressionAttributeNames={"#me": holder},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

    def holders(self, instance_id: str) -> dict[str, int]:
        return _turns(self._item(helper_key(instance_id))).holders

    def peek_turns(self, instance_id: str) -> Turns:
        """The helper's turns as stored, read only (no item is made, nothing lapsed)."""
        return _turns(self._item(helper_key(instance_id)))

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

    def unverified_instances(self) -> list[str]:
        """The instances the last hourly look found without a verified backup."""
        item = self._item(UNVERIFIED_INSTANCES_KEY)
        return [str(value.get("S", "")) for value in item.get("instances", {}).get("L", [])]

    def note_unverified_instances(self, instance_ids: list[str], now: int) -> None:
        with throttling_is_transient():
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": UNVERIFIED_INSTANCES_KEY},
                    "instances": {"L": [{"S": instance_id} for instance_id in instance_ids]},
                    "noted_at": {"N": str(now)},
                },
            )

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

    def _remove_if(self, key: dict[str, Any], field: str, holder: str, value: int) -> None:
        """Remove field.holder if it still has that value (a lapsed turn or place in line)."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="REMOVE #f.#h" + (", tokens.#h" if field == "waiting" else ""),
                ConditionExpression="#f.#h = :value",
                ExpressionAttributeNames={"#f": field, "#h": holder},
                ExpressionAttributeValues={":value": {"N": str(value)}},
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


def _turns(item: dict[str, Any]) -> Turns:
    def field(name: str) -> dict[str, Any]:
        return dict(item.get(name, {}).get("M", {}))

    return Turns(
        holders={h: int(v["N"]) for h, v in field("holders").items()},
        waiting={h: int(v["N"]) for h, v in field("waiting").items()},
        tokens={h: str(v["S"]) for h, v in field("tokens").items()},
    )
