"""The confirmation gate: the kit acts on a real account only when told so, explicitly."""

from collections.abc import Mapping

CONFIRMATION = "E2E_ACCOUNT_OK"


def refusal(environ: Mapping[str, str], has_credentials: bool, region: str) -> str:
    """Why the kit will not run (empty: it may). Each condition is asked for separately."""
    reasons = []
    if environ.get(CONFIRMATION) != "yes":
        reasons.append(
            f"{CONFIRMATION}=yes is not set: it creates billed resources in a real account "
            "(read the cost above, use a sandbox account)"
        )
    if not has_credentials:
        reasons.append("no AWS credentials (set AWS_PROFILE, or run aws configure)")
    if not region:
        reasons.append("no Region given (E2E_REGION=... or AWS_REGION=...)")
    if any(key.startswith("AWS_ENDPOINT_URL") for key in environ):
        reasons.append(
            "AWS_ENDPOINT_URL* is set: the kit talks to AWS itself (its simulator twin is "
            "tests/e2e, run by make test)"
        )
    return "; ".join(reasons)
