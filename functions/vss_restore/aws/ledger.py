"""DynamoDB adapter: the ledger of restores (one claim per snapshot) and the helpers' turns."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from vss_restore.aws import error_code, throttling_is_transient
from vss_restore.errors import AwsThrottled
from vss_restore.logic.looks import Record, decode

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RUNNING = "running"
EXECUTION_INDEX = "by-execution"
KEEP_SECONDS = 90 * 24 * 3600  # finished claims stay this long (TTL), then DynamoDB drops them
# One item: the instances the hourly look last reported, so that it alerts on changes only.
UNVERIFIED_INSTANCES_KEY = "unverified-instances"
# A waiting task's token outlives the longest wait (Step Functions' tasks end sooner).
WAITING_SECONDS = 2 * 24 * 3600
# The keys-only index of the lines: partition `line` (the helper's key), sort `queued_at`.
LINE_INDEX = "line"
# The `line` of the notes of restores that waited too long (one alert names them).
AGED_OUT = "aged-out"


def snapshot_key(snapshot_id: str) -> str:
    return f"snapshot#{snapshot_id}"


def helper_key(instance_id: str) -> str:
    return f"helper#{instance_id}"


def waiting_key(instance_id: str, holder: str) -> str:
    """A restore's place in the helper's line."""
    return f"waiting#{instance_id}#{holder}"


def aged_out_key(snapshot_id: str) -> str:
    return f"{AGED_OUT}#{snapshot_id}"


def command_key(volume_id: str, action: str) -> str:
    """The disk tool's command of one action on one temporary volume (each runs once)."""
    return f"command#{volume_id}#{action}"


def consistent_key(snapshot_id: str) -> str:
    return f"consistent#{snapshot_id}"


# The shared look at our temporary volumes (looks.py): the looker's election and the time
# of the last complete look in one item, and one small record per volume.
VOLUMES_LOOK_KEY = "volumes#look"
# BatchGetItem reads at most 100 keys a call (DynamoDB API Reference, BatchGetItem).
BATCH_GET = 100


def volume_key(volume_id: str) -> str:
    return f"volumes#{volume_id}"


def pace_key(action: str) -> str:
    """The pacer of one paced action (`pace#ec2:CreateSnapshot`): its next free slot."""
    return f"pace#{action}"


def commands_on_key(instance_id: str) -> str:
    """The `line` index partition of the disk tool commands waited for on one instance: what
    a helper lost finds in one Query (lost.py)."""
    return f"commands#{instance_id}"


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
    freed_at: int = 0  # when a turn was last given back (epoch s); 0: never


@dataclass(frozen=True)
class Waiter:
    """A restore in line for a helper's turn."""

    holder: str
    token: str  # its waiting task's token; "" between a dead token and its task's next attempt
    queued_at: int  # when it first queued (epoch ms): its place in line


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

    # -- the pacers of our EC2 mutating calls (logic/pacing.py) --------------------------------
    def take_slot(self, action: str, now: float, gap: float) -> float:
        """The slot (epoch s) of one call of `action`, and the pacer moved on by `gap`:
        logic/pacing.take's arithmetic, atomic. An update expression has no max(), so a busy
        pacer (next slot not past) is moved on in one conditional UpdateItem, and a free one
        (past, or none yet) set to now + gap in another; each returns the slot it gave, and a
        lost condition (the other case holds by now) tries the other one."""
        key = {"pk": {"S": pace_key(action)}}
        at_ms, gap_ms = int(now * 1000), max(1, round(gap * 1000))
        for _ in range(4):  # the pacer only moves forward: at most one switch is needed
            with throttling_is_transient():
                try:
                    old = self.client.update_item(
                        TableName=self.table,
                        Key=key,
                        UpdateExpression="SET next_at = next_at + :gap",
                        ConditionExpression="next_at >= :now",
                        ExpressionAttributeValues={
                            ":gap": {"N": str(gap_ms)},
                            ":now": {"N": str(at_ms)},
                        },
                        ReturnValues="UPDATED_OLD",
                    )["Attributes"]
                    return int(old["next_at"]["N"]) / 1000
                except ClientError as exc:
                    if error_code(exc) != "ConditionalCheckFailedException":
                        raise
                try:
                    self.client.update_item(
                        TableName=self.table,
                        Key=key,
                        UpdateExpression="SET next_at = :next",
                        ConditionExpression="attribute_not_exists(next_at) OR next_at < :now",
                        ExpressionAttributeValues={
                            ":next": {"N": str(at_ms + gap_ms)},
                            ":now": {"N": str(at_ms)},
                        },
                    )
                    return at_ms / 1000
                except ClientError as exc:
                    if error_code(exc) != "ConditionalCheckFailedException":
                        raise
        raise AwsThrottled(f"the pacer of {action} moved on four times: try again")

    # -- the helpers' turns, and the line of restores waiting for one ------------------------
    # The helper's item holds only `holders` {holder: lease end}: at most HelperConcurrency.
    # Each waiter is an item of its own (`waiting#<helper>#<holder>`: its task token, when it
    # first queued), found oldest first through the keys-only `line` index. No item grows with
    # the line: 10,000 waiters are 10,000 small items (tests/unit/test_line.py measures them).

    def turns(self, instance_id: str, now: int) -> Turns:
        """The helper's turns as they are now, after freeing lapsed ones (a dead holder)."""
        key = {"pk": {"S": helper_key(instance_id)}}
        item = self._item(key["pk"]["S"])
        with throttling_is_transient():
            if "holders" not in item:
                # The helper's first turn: its map of holders.
                self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET holders = if_not_exists(holders, :none)",
                    ExpressionAttributeValues={":none": {"M": {}}},
                )
                item = self._item(key["pk"]["S"])
            turns = _turns(item)
            lapsed = {h: until for h, until in turns.holders.items() if until < now}
            for holder, until in lapsed.items():
                self._remove_lapsed_holder(key, holder, until)
        return _turns(self._item(key["pk"]["S"])) if lapsed else turns

    def queue_for_turn(
        self, instance_id: str, holder: str, token: str, since_ms: int, expires_at: int
    ) -> Waiter:
        """Wait in line with this task token; a holder queued before keeps its place."""
        key = waiting_key(instance_id, holder)
        queued = self._queue(key, holder, instance_id, token, since_ms, expires_at)
        # None: our place was removed between the put and the update (a grant to our previous
        # token, or a release): we queue anew.
        return (
            queued
            or self._queue(key, holder, instance_id, token, since_ms, expires_at)
            or (Waiter(holder, token, since_ms))
        )

    def _queue(
        self, key: str, holder: str, instance_id: str, token: str, since_ms: int, expires_at: int
    ) -> Waiter | None:
        with throttling_is_transient():
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item={
                        "pk": {"S": key},
                        LINE_INDEX: {"S": helper_key(instance_id)},
                        "queued_at": {"N": str(since_ms)},
                        "token": {"S": token},
                        "expires_at": {"N": str(expires_at)},
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
                return Waiter(holder, token, since_ms)
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
            # In line already (our task's previous attempt): the new token, the same place.
            try:
                item = self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": key}},
                    UpdateExpression="SET #token = :token, expires_at = :expires",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeNames={"#token": "token"},
                    ExpressionAttributeValues={
                        ":token": {"S": token},
                        ":expires": {"N": str(expires_at)},
                    },
                    ReturnValues="ALL_NEW",
                )["Attributes"]
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                return None
        return _waiter(holder, item)

    def waiter(self, instance_id: str, holder: str) -> Waiter | None:
        """The holder's place in line as it is now (consistent), None if it is not in line."""
        item = self._item(waiting_key(instance_id, holder))
        return _waiter(holder, item) if item else None

    def line(self, instance_id: str, count: int) -> list[tuple[int, str]]:
        """The oldest `count` waiters for the helper's turns, oldest first: (when it queued,
        ms; holder). Read from the
        `line` index, which lags the table (DynamoDB Developer Guide, "Using Global Secondary
        Indexes in DynamoDB": a GSI is eventually consistent): a waiter just queued may be
        missing, one just gone may still be there. Read each one's item before acting."""
        prefix = waiting_key(instance_id, "")
        with throttling_is_transient():
            found = self.client.query(
                TableName=self.table,
                IndexName=LINE_INDEX,
                KeyConditionExpression="#line = :line",
                ExpressionAttributeNames={"#line": LINE_INDEX},
                ExpressionAttributeValues={":line": {"S": helper_key(instance_id)}},
                ScanIndexForward=True,
                Limit=count,
            )["Items"]
        return [
            (int(item["queued_at"]["N"]), _text(item, "pk").removeprefix(prefix)) for item in found
        ]

    def count_line(self, instance_id: str, since_ms: int, at_most: int) -> int:
        """How many queued for the helper's turns since `since_ms`, counted through the index
        up to `at_most` (a Query reads at most 1 MB a page: it may take a few)."""
        counted = 0
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": LINE_INDEX,
            "KeyConditionExpression": "#line = :line AND queued_at >= :since",
            "ExpressionAttributeNames": {"#line": LINE_INDEX},
            "ExpressionAttributeValues": {
                ":line": {"S": helper_key(instance_id)},
                ":since": {"N": str(since_ms)},
            },
            "Select": "COUNT",
        }
        while counted < at_most:
            with throttling_is_transient():
                found = self.client.query(**request, Limit=at_most - counted)
            counted += int(found["Count"])
            if "LastEvaluatedKey" not in found:
                break
            request["ExclusiveStartKey"] = found["LastEvaluatedKey"]
        return min(counted, at_most)

    def grant_turn(
        self, instance_id: str, holder: str, token: str, limit: int, lease_until: int
    ) -> bool:
        """Give a free turn to a waiter whose token is still `token`; False if either changed.
        One transaction: the helper's turns and the waiter's item are two items."""
        return self._transact(
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {"pk": {"S": helper_key(instance_id)}},
                    "UpdateExpression": "SET holders.#w = :until",
                    "ConditionExpression": "size(holders) < :limit"
                    " AND attribute_not_exists(holders.#w)",
                    "ExpressionAttributeNames": {"#w": holder},
                    "ExpressionAttributeValues": {
                        ":until": {"N": str(lease_until)},
                        ":limit": {"N": str(limit)},
                    },
                }
            },
            {
                "ConditionCheck": {
                    "TableName": self.table,
                    "Key": {"pk": {"S": waiting_key(instance_id, holder)}},
                    "ConditionExpression": "#token = :token",
                    "ExpressionAttributeNames": {"#token": "token"},
                    "ExpressionAttributeValues": {":token": {"S": token}},
                }
            },
        )

    def stop_waiting(self, instance_id: str, holder: str, token: str = "") -> None:
        """Take the holder out of the line; with `token`, only if its token is still that one."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"pk": {"S": waiting_key(instance_id, holder)}},
        }
        if token:
            request["ConditionExpression"] = "#token = :token"
            request["ExpressionAttributeNames"] = {"#token": "token"}
            request["ExpressionAttributeValues"] = {":token": {"S": token}}
        with throttling_is_transient():
            try:
                self.client.delete_item(**request)
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

    def leave_line(self, instance_id: str, holder: str, token: str) -> bool:
        """Take the holder out of the line if its token is still `token` ("" included: a
        waiter between two attempts of its task); False if the item changed or is gone."""
        with throttling_is_transient():
            try:
                self.client.delete_item(
                    TableName=self.table,
                    Key={"pk": {"S": waiting_key(instance_id, holder)}},
                    ConditionExpression="#token = :token",
                    ExpressionAttributeNames={"#token": "token"},
                    ExpressionAttributeValues={":token": {"S": token}},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                return False
        return True

    def take_back_grant(self, instance_id: str, holder: str, token: str, lease_until: int) -> None:
        """Undo a grant whose token was dead, unless the waiter has since come for its turn
        (a new token, or none once it found the turn its own): it keeps its place in line,
        without a token until its task's next attempt brings one."""
        self._transact(
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {"pk": {"S": helper_key(instance_id)}},
                    "UpdateExpression": "REMOVE holders.#w",
                    "ConditionExpression": "holders.#w = :until",
                    "ExpressionAttributeNames": {"#w": holder},
                    "ExpressionAttributeValues": {":until": {"N": str(lease_until)}},
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {"pk": {"S": waiting_key(instance_id, holder)}},
                    "UpdateExpression": "SET #token = :none",
                    "ConditionExpression": "#token = :token",
                    "ExpressionAttributeNames": {"#token": "token"},
                    "ExpressionAttributeValues": {":token": {"S": token}, ":none": {"S": ""}},
                }
            },
        )

    def give_back_turn(self, instance_id: str, holder: str, now: int) -> None:
        """Free the holder's turn and its place in line; either may be missing (a cleanup).
        The helper's item notes when (`freed_at`): its idle time starts there."""
        with throttling_is_transient():
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": helper_key(instance_id)}},
                    UpdateExpression="REMOVE holders.#me SET freed_at = :now",
                    # The helper's item is there, with its holders (made by `turns`).
                    ConditionExpression="attribute_exists(holders)",
                    ExpressionAttributeNames={"#me": holder},
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
        self.stop_waiting(instance_id, holder)

    def note_aged_out(self, instance_id: str, holder: str, snapshot_id: str, now_ms: int) -> None:
        """Leave word that the snapshot's restore waited too long, for the reconciliation's
        one alert (`aged_out`); in the `line` index under AGED_OUT, oldest first."""
        with throttling_is_transient():
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": aged_out_key(snapshot_id)},
                    LINE_INDEX: {"S": AGED_OUT},
                    "queued_at": {"N": str(now_ms)},
                    "helper": {"S": instance_id},
                    "holder": {"S": holder},
                    "expires_at": {"N": str(now_ms // 1000 + KEEP_SECONDS)},
                },
            )

    def aged_out(self, at_most: int) -> list[str]:
        """The snapshots whose restore waited too long and no alert has named yet."""
        with throttling_is_transient():
            found = self.client.query(
                TableName=self.table,
                IndexName=LINE_INDEX,
                KeyConditionExpression="#line = :aged",
                ExpressionAttributeNames={"#line": LINE_INDEX},
                ExpressionAttributeValues={":aged": {"S": AGED_OUT}},
                Limit=at_most,
            )["Items"]
        return [_text(item, "pk").removeprefix(aged_out_key("")) for item in found]

    def forget_aged_out(self, snapshot_id: str) -> None:
        with throttling_is_transient():
            self.client.delete_item(
                TableName=self.table, Key={"pk": {"S": aged_out_key(snapshot_id)}}
            )

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

    def wait_for(self, key: str, waiting: Waiting, now: int, instance_id: str = "") -> None:
        """Store the token of the task that waits; a retried task's token replaces it. With
        `instance_id` (a command on a helper), the wait is in the `line` index under
        `commands#<instance>` while its token is live, for a helper lost (lost.py)."""
        item = {
            "pk": {"S": key},
            "token": {"S": waiting.token},
            # Not "execution": the by-execution index holds claims only.
            "waiting_execution": {"S": waiting.execution},
            "operation": {"S": waiting.operation},
            "since": {"S": waiting.since},
            "expires_at": {"N": str(now + WAITING_SECONDS)},
        }
        if instance_id:
            item[LINE_INDEX] = {"S": commands_on_key(instance_id)}
            item["queued_at"] = {"N": str(now * 1000)}
        with throttling_is_transient():
            self.client.put_item(TableName=self.table, Item=item)

    def note_consistent_deleted(self, snapshot_id: str, execution: str, now: int) -> None:
        """Our consistent snapshot, deleted while pending: its `consistent#` record, no task
        waiting on it any more (no token), kept WAITING_SECONDS from now. EBS deletes the
        snapshot once it completes, and its completion event, then naming a snapshot that is
        gone, is known for ours by this record (steps.resolve)."""
        with throttling_is_transient():
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": consistent_key(snapshot_id)},
                    "waiting_execution": {"S": execution},
                    "operation": {"S": snapshot_id},
                    "deleted_at": {"N": str(now)},
                    "expires_at": {"N": str(now + WAITING_SECONDS)},
                },
            )

    def stop_indexing_wait(self, key: str, token: str) -> None:
        """Take an answered wait out of the `line` index (its token is spent), if its token is
        still that one: a helper lost later finds nothing to fail there."""
        with throttling_is_transient():
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": key}},
                    UpdateExpression="REMOVE #line, queued_at",
                    ConditionExpression="#token = :token AND attribute_exists(#line)",
                    ExpressionAttributeNames={"#line": LINE_INDEX, "#token": "token"},
                    ExpressionAttributeValues={":token": {"S": token}},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

    def waits_on(self, instance_id: str, since_ms: int, at_most: int) -> list[str]:
        """The keys of the command waits on the instance whose token may be live (queued since
        `since_ms`), through the `line` index: one Query, nothing read when none."""
        with throttling_is_transient():
            found = self.client.query(
                TableName=self.table,
                IndexName=LINE_INDEX,
                KeyConditionExpression="#line = :line AND queued_at >= :since",
                ExpressionAttributeNames={"#line": LINE_INDEX},
                ExpressionAttributeValues={
                    ":line": {"S": commands_on_key(instance_id)},
                    ":since": {"N": str(since_ms)},
                },
                Limit=at_most,
            )["Items"]
        return [_text(item, "pk") for item in found]

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

    # -- the shared look at our temporary volumes (looks.py) ------------------------------
    def volume_answer(self, volume_id: str) -> tuple[int, int, Record | None]:
        """One strongly consistent read of the look's item and the volume's record: when the
        last look started (epoch ms), when the last complete look started, and the record."""
        items = self._batch_get([VOLUMES_LOOK_KEY, volume_key(volume_id)])
        look = items.get(VOLUMES_LOOK_KEY, {})
        return (
            _number(look, "looked_at"),
            _number(look, "answered_at"),
            _record(items.get(volume_key(volume_id))),
        )

    def elect_looker(self, now_ms: int, every_ms: int) -> bool:
        """Become the looker: at most one a `every_ms` across the stack (a conditional update
        of one item); False when another started a look less than `every_ms` ago."""
        with throttling_is_transient():
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": VOLUMES_LOOK_KEY}},
                    UpdateExpression="SET looked_at = :now",
                    ConditionExpression="attribute_not_exists(looked_at) OR looked_at <= :due",
                    ExpressionAttributeValues={
                        ":now": {"N": str(now_ms)},
                        ":due": {"N": str(now_ms - every_ms)},
                    },
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                return False
        return True

    def volume_records(self, volume_ids: list[str]) -> dict[str, tuple[str, int]]:
        """The stored records of these volumes: volume -> (record text, expires_at)."""
        items = self._batch_get([volume_key(v) for v in volume_ids])
        return {
            pk.removeprefix(volume_key("")): (_text(item, "volume"), _number(item, "expires_at"))
            for pk, item in items.items()
        }

    def note_volume(self, volume_id: str, text: str, seen_at_ms: int, expires_at: int) -> None:
        """Write the volume's record, unless a later look wrote it already (two lookers a
        second apart can overlap: the later look's record stays)."""
        with throttling_is_transient():
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": volume_key(volume_id)}},
                    UpdateExpression="SET volume = :v, seen_at = :seen, expires_at = :expires",
                    ConditionExpression="attribute_not_exists(seen_at) OR seen_at < :seen",
                    ExpressionAttributeValues={
                        ":v": {"S": text},
                        ":seen": {"N": str(seen_at_ms)},
                        ":expires": {"N": str(expires_at)},
                    },
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

    def note_answered(self, looked_at_ms: int) -> None:
        """The look that started at `looked_at_ms` has written every record it changed."""
        with throttling_is_transient():
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": VOLUMES_LOOK_KEY}},
                    UpdateExpression="SET answered_at = :at",
                    ConditionExpression="attribute_not_exists(answered_at) OR answered_at < :at",
                    ExpressionAttributeValues={":at": {"N": str(looked_at_ms)}},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

    def forget_volume(self, volume_id: str) -> None:
        """Drop a deleted volume's record (TTL would, within the hour and DynamoDB's delay)."""
        with throttling_is_transient():
            self.client.delete_item(TableName=self.table, Key={"pk": {"S": volume_key(volume_id)}})

    def _batch_get(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Strongly consistent reads of these keys, BATCH_GET a call; the keys DynamoDB leaves
        unprocessed (its limits) are asked again, a bounded number of times."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), BATCH_GET):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"pk": {"S": key}} for key in keys[start : start + BATCH_GET]],
                    "ConsistentRead": True,
                }
            }
            for _ in range(5):
                with throttling_is_transient():
                    answer = self.client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table, []):
                    found[_text(item, "pk")] = dict(item)
                request = dict(answer.get("UnprocessedKeys") or {})
                if not request:
                    break
            else:
                raise AwsThrottled(
                    f"BatchGetItem left {len(request[self.table]['Keys'])} keys unread"
                )
        return found

    def _remove_lapsed_holder(self, key: dict[str, Any], holder: str, until: int) -> None:
        """Free a turn whose lease ran out, if it still has that lease (a dead holder)."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="REMOVE holders.#h",
                ConditionExpression="holders.#h = :until",
                ExpressionAttributeNames={"#h": holder},
                ExpressionAttributeValues={":until": {"N": str(until)}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def _transact(self, *items: dict[str, Any]) -> bool:
        """Write the items all or none; False if a condition failed or another transaction
        held one of them (TransactionConflict: look again, as for a lost condition)."""
        with throttling_is_transient():
            try:
                self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                return False
        return True

    def _item(self, pk: str) -> dict[str, Any]:
        with throttling_is_transient():
            found = self.client.get_item(
                TableName=self.table, Key={"pk": {"S": pk}}, ConsistentRead=True
            )
        return dict(found.get("Item", {}))


def _text(item: dict[str, Any], name: str) -> str:
    return str(item.get(name, {}).get("S", ""))


def _number(item: dict[str, Any], name: str) -> int:
    return int(item.get(name, {}).get("N", "0"))


def _record(item: dict[str, Any] | None) -> Record | None:
    if not item or "volume" not in item:
        return None
    return Record(
        decode(_text(item, "volume")), _number(item, "seen_at"), _number(item, "expires_at")
    )


def _turns(item: dict[str, Any]) -> Turns:
    def field(name: str) -> dict[str, Any]:
        return dict(item.get(name, {}).get("M", {}))

    return Turns(
        holders={h: int(v["N"]) for h, v in field("holders").items()},
        freed_at=int(item.get("freed_at", {}).get("N", "0")),
    )


def _waiter(holder: str, item: dict[str, Any]) -> Waiter:
    return Waiter(holder, _text(item, "token"), int(item.get("queued_at", {}).get("N", "0")))
