"""What the CLI tells an operator when it cannot go on, and the exit codes."""

from typing import Final

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

OK: Final = 0
NOT_VERIFIED: Final = 1  # the restore failed, was skipped or has no verdict yet
UNUSABLE: Final = 2  # bad usage, or an environment the CLI cannot work in


class OperatorError(Exception):
    """A message for the operator, and the exit code that goes with it."""

    def __init__(self, message: str, exit_code: int = UNUSABLE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class NoStack(OperatorError):
    def __init__(self, stack: str, region: str) -> None:
        super().__init__(
            f"no stack {stack} in {region}: deploy it with sam deploy, or give --stack"
        )


class UnknownSnapshot(OperatorError):
    def __init__(self, snapshot_id: str, region: str) -> None:
        super().__init__(
            f"{snapshot_id} does not exist in {region} (or is not visible to this account)"
        )


class UnknownExecution(OperatorError):
    def __init__(self, execution: str, region: str) -> None:
        super().__init__(f"no execution {execution} in {region}")


NO_CREDENTIALS: Final = (
    "no AWS credentials found: set AWS_PROFILE (or give --profile), run `aws configure` "
    "(or `aws sso login`), or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)
NO_REGION: Final = (
    "no AWS region: give --region, set AWS_REGION (or AWS_DEFAULT_REGION), "
    "or set a region in your profile"
)
# Codes that mean "these credentials are no good", whatever the service.
_BAD_CREDENTIALS: Final = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "AuthFailure",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
    }
)


def explain(exc: BotoCoreError | ClientError, region: str) -> OperatorError:
    """Turn what boto3 raised into a sentence an operator can act on."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return OperatorError(NO_CREDENTIALS)
    if isinstance(exc, NoRegionError):
        return OperatorError(NO_REGION)
    if isinstance(exc, ProfileNotFound):
        return OperatorError(f"{exc}: check --profile / AWS_PROFILE against ~/.aws/config")
    if isinstance(exc, EndpointConnectionError):
        return OperatorError(f"cannot reach AWS in {region}: {exc}")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        message = error.get("Message", "")
        if code in _BAD_CREDENTIALS:
            return OperatorError(
                f"AWS refused the credentials ({code}: {message}): refresh them "
                "(`aws sso login`, `aws configure`) or pick another AWS_PROFILE"
            )
        if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}:
            return OperatorError(f"not allowed to call {exc.operation_name} in {region}: {message}")
        return OperatorError(f"{exc.operation_name} failed in {region}: {code}: {message}")
    return OperatorError(f"AWS call failed in {region}: {exc}")
