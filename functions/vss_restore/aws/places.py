"""The fleet's places in the ledger table: at most MaxHelpers helpers, counted atomically.

One small item per place (`fleet#place-<n>`, n below MaxHelpers), taken by a conditional
put: two launches racing for the last place cannot both win, and no item grows with the
fleet. A place holds who took it (the restore that launched), its helper once launched, and
when the helper last got work (for the idle rule).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from vss_restore.aws import error_code, throttling_is_transient

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PLACE_PREFIX = "fleet#place-"


def place_key(number: int) -> str:
    return f"{PLACE_PREFIX}{number}"


@dataclass(frozen=True)
class Place:
    key: str
    owner: str  # "<execution>|<snapshot>" of the restore that launched its helper
    instance_id: str  # "" until RunInstances answered
    since: int  # epoch seconds: taken
    used: int  # epoch seconds: the helper last chosen for a restore


class Places:
    def __init__(self, table: str, client: "DynamoDBClient | None" = None) -> None:
        self.table = table
        self._client = client

    @property
    def client(self) -> "DynamoDBClient":
        if self._client is None:
            self._client = boto3.client("dynamodb")
        return self._client

    def all(self, max_helpers: int) -> list[Place]:
        """The places taken now (a consistent read of each)."""
        found = []
        with throttling_is_transient():
            for number in range(max_helpers):
                item = self.client.get_item(
                    TableName=self.table,
                    Key={"pk": {"S": place_key(number)}},
                    ConsistentRead=True,
                ).get("Item")
                if item:
                    found.append(_place(dict(item)))
        return found

    def take(self, owner: str, max_helpers: int, now: int) -> Place | None:
        """A free place for `owner` (the one it holds already, on a retry); None if all
        MaxHelpers are taken."""
        taken = self.all(max_helpers)
        mine = [p for p in taken if p.owner == owner]
        if mine:
            return mine[0]
        used = {p.key for p in taken}
        with throttling_is_transient():
            for number in range(max_helpers):
                key = place_key(number)
                if key in used:
                    continue
                try:
                    self.client.put_item(
                        TableName=self.table,
                        Item={
                            "pk": {"S": key},
                            "owner": {"S": owner},
                            "instance_id": {"S": ""},
                            "since": {"N": str(now)},
                            "used": {"N": str(now)},
                        },
                        ConditionExpression="attribute_not_exists(pk)",
                    )
                except ClientError as exc:
                    if error_code(exc) != "ConditionalCheckFailedException":
                        raise
                    continue  # another launch took it first
                return Place(key, owner, "", now, now)
        return None

    def note_instance(self, place: Place, instance_id: str) -> None:
        with throttling_is_transient():
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": place.key}},
                UpdateExpression="SET instance_id = :i",
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":i": {"S": instance_id}, ":owner": {"S": place.owner}},
            )

    def note_used(self, place: Place, now: int) -> None:
        """The helper got a restore: its idle time starts again."""
        with throttling_is_transient():
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": place.key}},
                    UpdateExpression="SET used = :now",
                    ConditionExpression="instance_id = :i",
                    ExpressionAttributeValues={
                        ":now": {"N": str(now)},
                        ":i": {"S": place.instance_id},
                    },
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

    def free(self, place: Place) -> None:
        """Give the place back, if it is still this one (not taken again meanwhile)."""
        with throttling_is_transient():
            try:
                self.client.delete_item(
                    TableName=self.table,
                    Key={"pk": {"S": place.key}},
                    ConditionExpression="#o = :owner",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":owner": {"S": place.owner}},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise


def _place(item: dict[str, Any]) -> Place:
    return Place(
        key=str(item["pk"]["S"]),
        owner=str(item.get("owner", {}).get("S", "")),
        instance_id=str(item.get("instance_id", {}).get("S", "")),
        since=int(item.get("since", {}).get("N", "0")),
        used=int(item.get("used", {}).get("N", "0")),
    )
