"""KMS adapter: whether the key of an encrypted snapshot can be used for the restore."""

from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import ClientError

from vss_restore.aws import error_code, error_message, throttling_is_transient
from vss_restore.errors import KeyNotUsable

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

REFUSALS = frozenset({"AccessDeniedException", "NotFoundException", "KMSInvalidStateException"})


class Kms:
    def __init__(self, client: "KMSClient | None" = None) -> None:
        self._client = client

    @property
    def client(self) -> "KMSClient":
        if self._client is None:
            self._client = boto3.client("kms")
        return self._client

    def require_usable(self, key_id: str, snapshot_id: str) -> None:
        """Refuse, before any volume exists, a snapshot whose key is gone, off or not ours."""
        with throttling_is_transient():
            try:
                key = self.client.describe_key(KeyId=key_id)["KeyMetadata"]
            except ClientError as exc:
                if error_code(exc) in REFUSALS:
                    raise KeyNotUsable(
                        f"{snapshot_id} is encrypted with {key_id}: {error_message(exc)}"
                    ) from exc
                raise
        if key.get("KeyState") != "Enabled":
            raise KeyNotUsable(
                f"{snapshot_id} is encrypted with {key_id}, which is {key.get('KeyState')}"
            )
