"""Thin adapters over the AWS APIs the workflow calls, raising our named errors."""

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError

from vss_restore.errors import AwsThrottled

THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    """AWS's message; "" when the answer carries none (moto's does not, for some errors)."""
    return str(exc.response.get("Error", {}).get("Message") or "")


@contextmanager
def throttling_is_transient() -> Iterator[None]:
    """Turn AWS throttling into AwsThrottled, which the state machine retries with backoff."""
    try:
        yield
    except ClientError as exc:
        if error_code(exc) in THROTTLING_CODES:
            raise AwsThrottled(f"{error_code(exc)}: {error_message(exc)}") from exc
        raise
