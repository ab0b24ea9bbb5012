"""Which calls an API fault hits: its count, and the function it is aimed at."""

from simulator.faults import Faults, parse_fault


def _calls(spec: dict[str, object], callers: list[str | None]) -> list[bool]:
    """For each call in turn, made by that function's handler: whether the fault hit it."""
    calling: list[str | None] = [None]
    faults = Faults([parse_fault(spec)], caller=lambda: calling[0])
    hits = []
    for caller in callers:
        calling[0] = caller
        hits.append(faults.api_error("ec2", "DescribeSnapshots") is not None)
    return hits


def test_a_fault_aimed_at_a_function_neither_hits_nor_counts_other_callers() -> None:
    spec = {
        "action": "ec2:DescribeSnapshots",
        "error": "UnauthorizedOperation",
        "skip": 1,
        "function": "SnapshotStateFunction",
    }
    callers = [
        "FindUnverifiedInstancesFunction",
        "SnapshotStateFunction",  # skipped
        "FindUnverifiedInstancesFunction",
        "SnapshotStateFunction",  # hit
        "SnapshotStateFunction",  # times: 1, used
    ]
    assert _calls(spec, callers) == [False, False, False, True, False]


def test_a_fault_for_any_function_counts_every_caller() -> None:
    spec = {"action": "ec2:DescribeSnapshots", "error": "UnauthorizedOperation", "skip": 1}
    assert _calls(spec, ["FindUnverifiedInstancesFunction", None, "X"]) == [False, True, False]
