"""One API call as IAM authorizes it: the actions, each on its resources, with their keys.

Built as AWS builds the request context (IAM User Guide, "Policy evaluation logic: request
context"), reading the resources' tags and attributes from moto's own state:
- the resources are those the Service Authorization Reference names for the action
  (simulator/iam/reference.py checks each request against it): AttachVolume the volume and
  the instance, CreateVolume the new volume (`volume/*`) and the snapshot, CreateSnapshot the
  volume and the new snapshot, SendCommand the document and each instance, ...;
- tags given at creation (TagSpecifications) are authorized as ec2:CreateTags on the new
  resource with `ec2:CreateAction` (EC2 User Guide, "Grant permission to tag resources during
  creation");
- the KMS calls EBS and SNS make with the caller's permissions: a volume created from, or
  attached with, a customer managed key needs kms:CreateGrant (`kms:GrantIsForAWSResource`)
  and the data-key permissions through `kms:ViaService` ec2 (EBS User Guide, "Amazon EBS
  encryption: permissions for IAM users"; AWS CDK's Volume.grantAttachVolume); publishing to
  a topic under a customer managed key needs kms:GenerateDataKey* and kms:Decrypt (SNS
  Developer Guide, "Encryption at rest: publisher permissions"). Keys AWS manages (aws/ebs)
  need no identity permission: their key policy allows the account's principals through
  the service.
An operation with resource types that is not modelled here raises NotImplementedError: a call
is never let through unjudged.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from moto.dynamodb.models import dynamodb_backends
from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends
from moto.kms.models import kms_backends
from moto.sns.models import sns_backends

from simulator.iam import reference
from simulator.iam.evaluate import Request, Resource
from vss_restore import tags as vss_tags

# EC2's tag specifications name the resource type; its ARN and the action's CreateAction.
_EC2_KINDS = {"vol": "volume", "snap": "snapshot", "i": "instance"}


@dataclass(frozen=True)
class Account:
    """Where the calls are made, and the moto state that answers them."""

    account: str
    region: str

    def arn(self, service: str, resource: str, *, account: bool = True) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account if account else ''}:{resource}"

    @property
    def ec2(self) -> Any:
        return ec2_backends[self.account][self.region]


def _request_tags(tags: Mapping[str, str]) -> dict[str, Any]:
    context: dict[str, Any] = {"aws:TagKeys": sorted(tags)}
    context.update({f"aws:RequestTag/{k}": v for k, v in tags.items()})
    return context


class Requests:
    """The requests IAM authorizes for each call made in this account."""

    def __init__(self, account: Account) -> None:
        self.where = account
        self._builders: dict[str, Callable[[str, Mapping[str, Any]], list[Request]]] = {
            "ec2:CreateVolume": self._create_volume,
            "ec2:AttachVolume": self._attach_or_detach,
            "ec2:DetachVolume": self._attach_or_detach,
            "ec2:DeleteVolume": self._delete_volume,
            "ec2:CreateSnapshot": self._create_snapshot,
            "ec2:DeleteSnapshot": self._delete_snapshot,
            "ec2:CreateTags": self._create_tags,
            "ec2:RunInstances": self._run_instances,
            "ec2:TerminateInstances": self._instances_action,
            "ec2:StopInstances": self._instances_action,
            "ec2:StartInstances": self._instances_action,
            "ssm:GetParameter": self._get_parameter,
            "kms:DescribeKey": self._describe_key,
            "sns:Publish": self._publish,
            "ssm:SendCommand": self._send_command,
            "lambda:InvokeFunction": self._invoke,
            "states:StartExecution": self._start_execution,
            "states:DescribeExecution": self._describe_execution,
            "logs:CreateLogStream": self._log_stream,
            "logs:PutLogEvents": self._log_stream,
            "logs:DescribeLogStreams": self._log_group,
        }
        for operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"):
            self._builders[f"dynamodb:{operation}"] = self._dynamodb
        self._builders["dynamodb:TransactWriteItems"] = self._transact_write
        self._builders["dynamodb:BatchGetItem"] = self._batch_get

    def of(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        """Every request the call is authorized as, each checked against the reference."""
        builder = self._builders.get(action)
        if builder is None:
            if reference.has_resource_types(action):
                raise NotImplementedError(
                    f"{action} has resource types: judge it before letting it through"
                )
            requests = [Request(action, [Resource("*")])]
        else:
            requests = builder(action, params)
        return [_as_referenced(request) for request in requests]

    # -- EC2 ---------------------------------------------------------------------------
    def _ec2_arn(self, resource_id: str) -> str:
        kind = _EC2_KINDS.get(resource_id.split("-", 1)[0])
        if kind is None:
            raise NotImplementedError(f"no ARN for EC2 resource {resource_id}")
        return self.where.arn("ec2", f"{kind}/{resource_id}", account=kind != "snapshot")

    def _tags_of(self, resource_id: str) -> dict[str, str]:
        return dict(self.where.ec2.tags.get(resource_id, {}))

    def _volume(self, volume_id: str) -> Resource:
        keys: dict[str, Any] = {}
        volume = self.where.ec2.volumes.get(volume_id)
        if volume is not None:
            keys = {
                "ec2:Encrypted": str(bool(volume.encrypted)).lower(),
                "ec2:VolumeSize": str(volume.size),
                "ec2:VolumeType": volume.volume_type,
                "ec2:AvailabilityZone": volume.zone.name if volume.zone else "",
            }
            if volume.snapshot_id:
                keys["ec2:ParentSnapshot"] = self._ec2_arn(volume.snapshot_id)
        return Resource(self._ec2_arn(volume_id), self._tags_of(volume_id), keys)

    def _snapshot(self, snapshot_id: str) -> Resource:
        keys: dict[str, Any] = {}
        snapshot = self.where.ec2.snapshots.get(snapshot_id)
        if snapshot is not None:
            keys = {
                "ec2:Owner": snapshot.owner_id,
                "ec2:Encrypted": str(bool(snapshot.encrypted)).lower(),
                "ec2:VolumeSize": str(snapshot.volume.size),
                "ec2:ParentVolume": self._ec2_arn(snapshot.volume.id),
            }
        return Resource(self._ec2_arn(snapshot_id), self._tags_of(snapshot_id), keys)

    def _instance(self, instance_id: str) -> Resource:
        return Resource(self._ec2_arn(instance_id), self._tags_of(instance_id))

    def _attached_instance(self, volume_id: str) -> str:
        volume = self.where.ec2.volumes.get(volume_id)
        attachment = getattr(volume, "attachment", None)
        return str(attachment.instance.id) if attachment is not None else ""

    def _tagging_at_creation(
        self, kind: str, creating: str, specifications: Any
    ) -> tuple[dict[str, str], list[Request]]:
        tags: dict[str, str] = {}
        for specification in specifications or []:
            if specification.get("ResourceType") != kind:
                raise NotImplementedError(
                    f"{creating}: tags for {specification.get('ResourceType')}"
                )
            tags.update(vss_tags.as_dict(specification.get("Tags")))
        if not tags:
            return {}, []
        new = Resource(self.where.arn("ec2", f"{kind}/*", account=kind != "snapshot"))
        context = {**_request_tags(tags), "ec2:CreateAction": creating}
        return tags, [Request("ec2:CreateTags", [new], context)]

    def _key(self, key_id: str) -> Any:
        backend = kms_backends[self.where.account][self.where.region]
        try:
            return backend.describe_key(key_id)
        except Exception:  # an unknown key: IAM still judges its ARN
            return None

    def _customer_key_arn(self, key_id: str | None) -> str:
        """The key's ARN when it is a customer managed key (one IAM must allow), else ""."""
        if not key_id:
            return ""
        key = self._key(key_id)
        if key is None:
            return key_id if key_id.startswith("arn:") else self.where.arn("kms", f"key/{key_id}")
        return "" if key.key_manager == "AWS" else str(key.arn)

    def _ebs_key_requests(
        self, key_arn: str, actions: tuple[str, ...], grant: Mapping[str, str] | None = None
    ) -> list[Request]:
        via = {"kms:ViaService": f"ec2.{self.where.region}.amazonaws.com"}
        found = []
        for action in actions:
            context = dict(via)
            if action == "kms:CreateGrant":
                context["kms:GrantIsForAWSResource"] = "true"
                context.update(grant or {})
            found.append(Request(action, [Resource(key_arn)], context))
        return found

    def _create_volume(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        tags, tagging = self._tagging_at_creation(
            "volume", "CreateVolume", params.get("TagSpecifications")
        )
        encrypted = bool(params.get("Encrypted"))
        key_id = params.get("KmsKeyId")
        resources = []
        snapshot_id = params.get("SnapshotId")
        if snapshot_id:
            snapshot = self._snapshot(snapshot_id)
            resources.append(snapshot)
            found = self.where.ec2.snapshots.get(snapshot_id)
            if found is not None and found.encrypted:
                encrypted = True
                key_id = key_id or found.kms_key_id
        volume_keys = {
            "ec2:Encrypted": str(encrypted).lower(),
            "ec2:AvailabilityZone": str(params.get("AvailabilityZone", "")),
            "ec2:VolumeType": str(params.get("VolumeType", "gp2")),
        }
        if params.get("Size") is not None:
            volume_keys["ec2:VolumeSize"] = str(params["Size"])
        if snapshot_id:
            volume_keys["ec2:ParentSnapshot"] = self._ec2_arn(snapshot_id)
        new_volume = Resource(self.where.arn("ec2", "volume/*"), {}, volume_keys)
        requests = [
            Request(
                "ec2:CreateVolume", [new_volume, *resources], _request_tags(tags) if tags else {}
            )
        ]
        requests.extend(tagging)
        key_arn = self._customer_key_arn(key_id) if encrypted else ""
        if key_arn:
            requests.extend(
                self._ebs_key_requests(
                    key_arn,
                    (
                        "kms:DescribeKey",
                        "kms:CreateGrant",
                        "kms:GenerateDataKeyWithoutPlaintext",
                        "kms:Decrypt",
                    ),
                )
            )
        return requests

    def _attach_or_detach(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        volume_id = str(params["VolumeId"])
        instance_id = str(params.get("InstanceId") or self._attached_instance(volume_id))
        resources = [self._volume(volume_id)]
        if instance_id:
            resources.append(self._instance(instance_id))
        requests = [Request(action, resources)]
        volume = self.where.ec2.volumes.get(volume_id)
        if action == "ec2:AttachVolume" and volume is not None and volume.encrypted:
            key_arn = self._customer_key_arn(volume.kms_key_id)
            if key_arn:
                # EC2 creates a grant for the instance, with the caller's permissions,
                # constrained to the volume's encryption context (KMS Developer Guide,
                # "Examining grants": EncryptionContextSubset aws:ebs:id).
                constraint = {"kms:GrantConstraintType": "EncryptionContextSubset"}
                requests.extend(self._ebs_key_requests(key_arn, ("kms:CreateGrant",), constraint))
        return requests

    def _run_instances(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        """RunInstances as the Service Authorization Reference lists it: the image, the new
        instance, network interface and root volume, the security groups and the subnet;
        tags at launch as CreateTags (ec2:CreateAction RunInstances) on each tagged type; an
        instance profile as iam:PassRole of its role (EC2 User Guide, "IAM roles for Amazon
        EC2": the caller needs iam:PassRole)."""
        ec2 = self.where.ec2
        tags: dict[str, str] = {}
        tagging: list[Request] = []
        for specification in params.get("TagSpecifications") or []:
            kind = str(specification["ResourceType"])
            kind_tags = vss_tags.as_dict(specification.get("Tags"))
            tags.update(kind_tags)
            new = Resource(self.where.arn("ec2", f"{kind}/*"))
            context = {**_request_tags(kind_tags), "ec2:CreateAction": "RunInstances"}
            tagging.append(Request("ec2:CreateTags", [new], context))
        image_id = str(params["ImageId"])
        image = ec2.amis.get(image_id)
        image_keys = {
            "ec2:Owner": "amazon"
            if getattr(image, "owner_alias", "") == "amazon"
            else str(getattr(image, "owner_id", "")),
            "ec2:RootDeviceType": str(getattr(image, "root_device_type", "")),
        }
        subnet_id = str(params.get("SubnetId", ""))
        subnet = ec2.get_subnet(subnet_id) if subnet_id else None
        vpc_arn = self.where.arn("ec2", f"vpc/{subnet.vpc_id}") if subnet is not None else ""
        metadata = params.get("MetadataOptions") or {}
        profile = str((params.get("IamInstanceProfile") or {}).get("Arn", ""))
        instance_keys = {
            "ec2:InstanceType": str(params.get("InstanceType", "m1.small")),
            "ec2:MetadataHttpTokens": str(metadata.get("HttpTokens", "optional")),
        }
        if profile:
            instance_keys["ec2:InstanceProfile"] = profile
        root: Mapping[str, Any] = next(iter(params.get("BlockDeviceMappings") or []), {})
        encrypted = bool((root.get("Ebs") or {}).get("Encrypted"))
        resources = [
            Resource(self.where.arn("ec2", f"image/{image_id}", account=False), {}, image_keys),
            Resource(self.where.arn("ec2", "instance/*"), {}, instance_keys),
            Resource(self.where.arn("ec2", "network-interface/*"), {}, {"ec2:Vpc": vpc_arn}),
            *(
                Resource(self.where.arn("ec2", f"security-group/{group}"))
                for group in params.get("SecurityGroupIds") or []
            ),
            Resource(self.where.arn("ec2", f"subnet/{subnet_id}"), {}, {"ec2:SubnetID": subnet_id}),
            Resource(
                self.where.arn("ec2", "volume/*"), {}, {"ec2:Encrypted": str(encrypted).lower()}
            ),
        ]
        requests = [Request("ec2:RunInstances", resources, _request_tags(tags) if tags else {})]
        requests.extend(tagging)
        if profile:
            requests.append(
                Request(
                    "iam:PassRole",
                    [Resource(self._role_of_profile(profile))],
                    {"iam:PassedToService": "ec2.amazonaws.com"},
                )
            )
        return requests

    def _role_of_profile(self, profile_arn: str) -> str:
        iam = iam_backends[self.where.account]["aws"]
        for profile in iam.instance_profiles.values():
            if profile.arn == profile_arn:
                return str(profile.roles[0].arn) if profile.roles else profile_arn
        return profile_arn  # no such profile: EC2 refuses the launch anyway

    def _instances_action(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        return [Request(action, [self._instance(str(i)) for i in params.get("InstanceIds", [])])]

    def _get_parameter(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        name = str(params["Name"])
        public = name.startswith("/aws/service/")
        arn = self.where.arn(
            "ssm", f"parameter{name if name.startswith('/') else '/' + name}", account=not public
        )
        return [Request(action, [Resource(arn)])]

    def _delete_volume(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        return [Request("ec2:DeleteVolume", [self._volume(str(params["VolumeId"]))])]

    def _create_snapshot(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        tags, tagging = self._tagging_at_creation(
            "snapshot", "CreateSnapshot", params.get("TagSpecifications")
        )
        new = Resource(self.where.arn("ec2", "snapshot/*", account=False))
        volume = self._volume(str(params["VolumeId"]))
        return [
            Request("ec2:CreateSnapshot", [new, volume], _request_tags(tags) if tags else {}),
            *tagging,
        ]

    def _delete_snapshot(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        return [Request("ec2:DeleteSnapshot", [self._snapshot(str(params["SnapshotId"]))])]

    def _create_tags(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        tags = vss_tags.as_dict(params.get("Tags"))
        resources = []
        for resource_id in map(str, params["Resources"]):
            if resource_id.startswith("vol-"):
                resources.append(self._volume(resource_id))
            elif resource_id.startswith("snap-"):
                resources.append(self._snapshot(resource_id))
            else:
                resources.append(self._instance(resource_id))
        return [Request("ec2:CreateTags", resources, _request_tags(tags))]

    # -- KMS, SNS, SSM, Step Functions, CloudWatch Logs ----------------------------------------
    def _describe_key(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        key_id = str(params["KeyId"])
        key = self._key(key_id)
        arn = str(key.arn) if key is not None else self.where.arn("kms", f"key/{key_id}")
        return [Request("kms:DescribeKey", [Resource(arn)])]

    def _publish(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        topic_arn = str(params["TopicArn"])
        requests = [Request("sns:Publish", [Resource(topic_arn)])]
        topic = sns_backends[self.where.account][self.where.region].topics.get(topic_arn)
        key_arn = self._customer_key_arn(getattr(topic, "kms_master_key_id", "") or None)
        if key_arn:
            via = {"kms:ViaService": f"sns.{self.where.region}.amazonaws.com"}
            for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                requests.append(Request(action, [Resource(key_arn)], via))
        return requests

    def _send_command(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        if params.get("Targets"):
            raise NotImplementedError("ssm:SendCommand by Targets is not modelled")
        name = str(params["DocumentName"])
        owned_by_aws = name.startswith(("AWS-", "AWSEC2-", "AmazonCloudWatch"))
        document = self.where.arn("ssm", f"document/{name}", account=not owned_by_aws)
        instances = [self._instance(str(i)) for i in params.get("InstanceIds", [])]
        return [Request("ssm:SendCommand", [Resource(document), *instances])]

    def _invoke(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        name = str(params["FunctionName"])
        arn = name if name.startswith("arn:") else self.where.arn("lambda", f"function:{name}")
        return [Request(action, [Resource(arn)])]

    def _start_execution(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        return [Request("states:StartExecution", [Resource(str(params["stateMachineArn"]))])]

    def _describe_execution(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        return [Request("states:DescribeExecution", [Resource(str(params["executionArn"]))])]

    def _log_group(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        # The log group as CloudWatch Logs names it in its refusals (`...:log-stream:`), which
        # a log group's own ARN from Fn::GetAtt (`...:log-group:NAME:*`) covers.
        group = f"{params['logGroupName']}:log-stream:"
        return [
            Request(
                "logs:DescribeLogStreams", [Resource(self.where.arn("logs", f"log-group:{group}"))]
            )
        ]

    def _log_stream(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        group, stream = str(params["logGroupName"]), str(params["logStreamName"])
        arn = self.where.arn("logs", f"log-group:{group}:log-stream:{stream}")
        return [Request(action, [Resource(arn)])]

    # -- DynamoDB ----------------------------------------------------------------------------
    def _dynamodb(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        name = str(params["TableName"])
        table = dynamodb_backends[self.where.account][self.where.region].tables.get(name)
        arn = self.where.arn("dynamodb", f"table/{name}")
        index = params.get("IndexName")
        if index:
            arn += f"/index/{index}"
        leading = _leading_keys(table, params, str(index or ""))
        context = {"dynamodb:LeadingKeys": leading} if leading is not None else {}
        return [Request(action, [Resource(arn)], context)]

    def _transact_write(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        """Each item of a transaction is authorized as its own action, on its own key
        (DynamoDB Developer Guide, "Using IAM with DynamoDB transactions": Put, Update and
        Delete as PutItem, UpdateItem and DeleteItem; ConditionCheck as ConditionCheckItem).
        There is no dynamodb:TransactWriteItems permission."""
        actions = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        requests = []
        for item in params["TransactItems"]:
            [(kind, inner)] = item.items()
            requests += self._dynamodb(f"dynamodb:{actions[kind]}", inner)
        return requests

    def _batch_get(self, action: str, params: Mapping[str, Any]) -> list[Request]:
        """One request per table, on the table, with every key it reads as LeadingKeys
        (DynamoDB Developer Guide, "Using IAM policy conditions for fine-grained access
        control": BatchGetItem is among the actions the condition applies to), so a policy's
        ForAllValues refuses a batch with any key outside its prefixes."""
        requests = []
        for name, asked in params["RequestItems"].items():
            table = dynamodb_backends[self.where.account][self.where.region].tables.get(name)
            context: dict[str, Any] = {}
            if table is not None:
                leading = [_scalar(key[table.hash_key_attr]) for key in asked["Keys"]]
                context = {"dynamodb:LeadingKeys": leading}
            requests.append(
                Request(action, [Resource(self.where.arn("dynamodb", f"table/{name}"))], context)
            )
        return requests


_EQUALS = re.compile(r"(#?[A-Za-z0-9_.\-]+)\s*=\s*(:[A-Za-z0-9_]+)")


def _leading_keys(table: Any, params: Mapping[str, Any], index: str) -> list[str] | None:
    """dynamodb:LeadingKeys: the partition key values the request names (DynamoDB Developer
    Guide, "Using IAM policy conditions for fine-grained access control")."""
    if table is None:
        return None
    hash_key = table.hash_key_attr
    if index:
        indexes = {i.name: i for i in [*table.global_indexes, *table.indexes]}
        schema = indexes[index].schema if index in indexes else []
        hash_key = next((k["AttributeName"] for k in schema if k["KeyType"] == "HASH"), "")
    if "Key" in params:
        return [_scalar(params["Key"][hash_key])]
    if "Item" in params:
        return [_scalar(params["Item"][hash_key])]
    expression = str(params.get("KeyConditionExpression", ""))
    names = params.get("ExpressionAttributeNames") or {}
    values = params.get("ExpressionAttributeValues") or {}
    for name, value in _EQUALS.findall(expression):
        if names.get(name, name) == hash_key:
            return [_scalar(values[value])]
    return None


def _scalar(value: Mapping[str, Any]) -> str:
    [(_, inner)] = value.items()
    return str(inner)


def _as_referenced(request: Request) -> Request:
    """The request as AWS makes it: its resources are of the types the reference names for the
    action (every required one present), each carrying only the condition keys the reference
    lists for that action and type; a request-level key it does not list is our mistake."""
    resources = []
    kinds = []
    for resource in request.resources:
        kind = reference.type_of(request.action, resource.arn)
        keys = {
            key: value
            for key, value in resource.keys.items()
            if reference.lists_key(request.action, key, kind)
        }
        resources.append(Resource(resource.arn, resource.tags, keys))
        kinds.append(kind.name)
    reference.check_keys(request.action, list(request.context))
    for kind in reference.resource_types(request.action):
        # Alternatives the reference marks required both (Step Functions' execution or express
        # execution): one of them is enough.
        if (
            kind.required
            and kind.name not in kinds
            and not any(
                other.required and other.name in kinds
                for other in reference.resource_types(request.action)
            )
        ):
            raise reference.NotInReference(f"{request.action} needs a {kind.name} resource")
    return Request(request.action, resources, request.context)
