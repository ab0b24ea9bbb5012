"""SNS adapter: the alert operators get when a restore fails."""

from typing import TYPE_CHECKING

import boto3

from vss_restore.aws import throttling_is_transient

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

MAX_SUBJECT = 100  # SNS refuses longer subjects


class Sns:
    def __init__(self, client: "SNSClient | None" = None) -> None:
        self._client = client

    @property
    def client(self) -> "SNSClient":
        if self._client is None:
            self._client = boto3.client("sns")
        return self._client

    def publish(self, topic_arn: str, subject: str, message: str) -> None:
        with throttling_is_transient():
            self.client.publish(TopicArn=topic_arn, Subject=subject[:MAX_SUBJECT], Message=message)
