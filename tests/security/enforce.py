"""Enforce a role's synthesized policy on the calls code makes against moto.

moto checks no IAM resources or conditions. `Enforcer` hooks the boto3 clients a handler
uses (botocore's provide-client-params event, before anything is sent), turns each call into
the request IAM would authorize (its resources with their tags as moto holds them, the
request's tags), judges it with tests/security/iam.py and, when the role would be refused,
raises the error AWS would return. Every call is recorded with the verdict.

Only the EC2, DynamoDB and SNS calls of the cleanup paths are modelled; any other call
through a hooked client fails the test, so that nothing passes unjudged.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from simulator.iam.evaluate import Request, Resource, allows
from simulator.iam.stack import ACCOUNT, REGION, Principal

DENIED_CODES = {
    "ec2": "UnauthorizedOperation",
    "dynamodb": "AccessDeniedException",
    "sns": "AuthorizationError",
}


@dataclass(frozen=True)
class Call:
    action: str
    resources: tuple[str, ...]
    allowed: bool


@dataclass
class Enforcer:
    principal: Principal
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        # A client of its own for the tag look-ups, so that they are neither hooked nor judged.
        self._look = boto3.session.Session().client("ec2", region_name=REGION)

    @property
    def denied(self) -> list[Call]:
        return [call for call in self.calls if not call.allowed]

    @contextmanager
    def on(self, *clients: Any) -> Iterator["Enforcer"]:
        """Judge every call made through these clients while the block runs."""
        hooks = []
        for client in clients:
            service = client.meta.service_model.endpoint_prefix
            event = f"provide-client-params.{service}"
            client.meta.events.register(event, self._judge)
            hooks.append((client, event))
        try:
            yield self
        finally:
            for client, event in hooks:
                client.meta.events.unregister(event, self._judge)

    def _judge(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.endpoint_prefix
        action = f"{service}:{model.name}"
        request = self._request(service, model.name, params, action)
        allowed = allows(self.principal.statements, request)
        self.calls.append(Call(action, tuple(r.arn for r in request.resources), allowed))
        if not allowed:
            raise ClientError(
                {
                    "Error": {
                        "Code": DENIED_CODES[service],
                        "Message": f"{self.principal.name} is not authorized to perform {action}",
                    }
                },
                model.name,
            )

    def _request(
        self, service: str, operation: str, params: Mapping[str, Any], action: str
    ) -> Request:
        if service == "ec2":
            return self._ec2(operation, params, action)
        if service == "dynamodb":
            table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{params['TableName']}"
            if params.get("IndexName"):
                table += f"/index/{params['IndexName']}"
            return Request(action, [Resource(table)])
        if service == "sns" and operation == "Publish":
            return Request(action, [Resource(params["TopicArn"])])
        raise AssertionError(f"{action} is not modelled: judge it before letting it through")

    def _ec2(self, operation: str, params: Mapping[str, Any], action: str) -> Request:
        if operation.startswith("Describe"):
            return Request(action, [Resource("*")])
        if operation in {"AttachVolume", "DetachVolume"}:
            volume = self._volume(params["VolumeId"])
            instance_id = params.get("InstanceId") or self._attached_to(params["VolumeId"])
            return Request(action, [volume, self._instance(instance_id)])
        if operation == "DeleteVolume":
            return Request(action, [self._volume(params["VolumeId"])])
        if operation == "CreateTags":
            new_tags = {tag["Key"]: tag["Value"] for tag in params["Tags"]}
            context: dict[str, Any] = {"aws:TagKeys": sorted(new_tags)}
            context.update({f"aws:RequestTag/{k}": v for k, v in new_tags.items()})
            return Request(action, [self._any(r) for r in params["Resources"]], context)
        raise AssertionError(f"{action} is not modelled: judge it before letting it through")

    def _tags(self, found: Mapping[str, Any]) -> dict[str, str]:
        return {tag["Key"]: tag["Value"] for tag in found.get("Tags", [])}

    def _volume(self, volume_id: str) -> Resource:
        [found] = self._look.describe_volumes(VolumeIds=[volume_id])["Volumes"]
        return Resource(f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/{volume_id}", self._tags(found))

    def _attached_to(self, volume_id: str) -> str:
        [found] = self._look.describe_volumes(VolumeIds=[volume_id])["Volumes"]
        return str(found["Attachments"][0]["InstanceId"])

    def _instance(self, instance_id: str) -> Resource:
        [reservation] = self._look.describe_instances(InstanceIds=[instance_id])["Reservations"]
        [found] = reservation["Instances"]
        arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance_id}"
        return Resource(arn, self._tags(found))

    def _any(self, resource_id: str) -> Resource:
        if resource_id.startswith("vol-"):
            return self._volume(resource_id)
        if resource_id.startswith("i-"):
            return self._instance(resource_id)
        if resource_id.startswith("snap-"):
            [found] = self._look.describe_snapshots(SnapshotIds=[resource_id])["Snapshots"]
            return Resource(f"arn:aws:ec2:{REGION}::snapshot/{resource_id}", self._tags(found))
        raise AssertionError(f"CreateTags on {resource_id} is not modelled")
