"""The README's section "What was tried, and what happened", rendered from the case list.

    PYTHONPATH=functions:. .venv/bin/python -m tests.faults.table   # rewrite the README section

tests/faults/test_readme_table.py holds the README equal to what this renders.
"""

import json
import re
import textwrap
from pathlib import Path
from typing import Any

from tests.faults.cases import BUGS, CASES, NO_STEP, Case, sdk_attempts

README = Path(__file__).parents[2] / "README.md"
HEADING = "## What was tried, and what happened"
FOLLOWING = "## Not there yet"
WIDTH = 92  # the README's prose is wrapped at this width

INTRO = (
    "`tests/faults/` (issue #4) runs every row through the simulator: the base scenario "
    "`tests/faults/scenarios/base.json` (web1 with a data volume D, the stack's helper, one "
    "VSS snapshot of D delivered by its event) with what the row injects, and checks what an "
    "operator would see: the first execution's status, the verdict in the execution and in "
    "the snapshot's tags, the volumes created and left, the workflow's own snapshots, the "
    "alerts, and that no helper turn is held and no claim is running at the end. "
    '"Throttled" fails as many calls as botocore tries '
    f"({sdk_attempts('ec2')}; DynamoDB {sdk_attempts('dynamodb')}), so the handler sees "
    "`AwsThrottled` once and the state machine's Retry does the rest; a permanent error "
    "fails the step's one call (the cleanup's own calls work); a timeout makes the resource "
    "or the command outlast the wait's bound. Rows marked ✗ fail today (strict `xfail`) "
    "because of the open bug named under the table. The table is generated from "
    "`tests/faults/cases.py` (a test holds the two equal); after changing the cases:"
)
REGENERATE = "```\nPYTHONPATH=functions:. .venv/bin/python -m tests.faults.table\n```"
LEFTOVER = (
    "A restore that fails after its consistent snapshot was started deletes that snapshot "
    "in its cleanup (issue #16), and the reason of the source snapshot's verdict (`none`) "
    "names it. One still pending is named and left: EBS would carry out its deletion only "
    "once it completes, and its completion event would then name a snapshot that is gone; "
    "completed, the daily retention deletes it. The rows that show it say so."
)


def render() -> str:
    """The whole section, from its heading to the blank line before the next one."""
    rows = [
        "| Case | What was injected | Status | Verdict (reason) | Left behind | Alert |",
        "|---|---|---|---|---|---|",
        *(_row(case) for case in CASES),
    ]
    bugs = sorted({bug for case in CASES for bug in case.bug})
    legend = [
        f"- ✗ **{bug}** ({'simulator' if bug.startswith('S') else 'workflow'}): {BUGS[bug]}."
        for bug in bugs
    ]
    parts = [HEADING, textwrap.fill(INTRO, WIDTH), REGENERATE, "\n".join(rows)]
    if any(case.snapshot_left or case.snapshot_deleted for case in CASES):
        parts.append(textwrap.fill(LEFTOVER, WIDTH))
    if legend:
        parts.append("Open bugs:\n\n" + "\n".join(legend))
    return "\n\n".join(parts) + "\n\n"


def _row(case: Case) -> str:
    name = case.tried if case.step == NO_STEP else f"{case.step}: {case.tried}"
    name += f" ✗ {', '.join(case.bug)}" if case.bug else ""
    cells = [name, _injected(case), _status(case), _verdict(case), _left(case), _alert(case)]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _injected(case: Case) -> str:
    parts = [case.injected] if case.injected else []
    if case.key:
        state = "we cannot see" if case.key == "missing" else case.key
        parts.append(f"snapshot encrypted, KMS key {state}")
    change = case.change
    parts += [f"`{k}={v}`" for k, v in change.get("parameters", {}).items()]
    if not case.injected:
        parts += [
            f"{alias} `{json.dumps(spec)}`" for alias, spec in change.get("instances", {}).items()
        ]
        parts += [f"snapshot `{json.dumps(spec)}`" for spec in change.get("snapshots", {}).values()]
        parts += [text for step in change.get("steps", []) if (text := _step(step))]
    parts += [_fault(fault) for fault in change.get("faults", [])]
    return "; ".join(parts) or "nothing"


def _step(step: dict[str, Any]) -> str:
    at = f" at {step['at']} s" if "at" in step else ""
    if "set_ping_status" in step:
        return f"helper's agent `{step['set_ping_status']['status']}`{at}"
    if "start" in step:
        started = step["start"]
        if "input" in started:
            return f"on-demand input `{json.dumps(started['input'])}`"
        return "on-demand restore"
    delivered = step.get("deliver", {})
    if "raw" in delivered:
        raw = delivered["raw"]
        return f'event "{raw["detail-type"]}" with detail `{json.dumps(raw["detail"])}`'
    if delivered.get("failed"):
        return "multi-volume event, every snapshot `error`"
    if step.get("times", 1) > 1:
        return f"the snapshot's event {step['times']} times at once"
    return ""


def _fault(fault: dict[str, Any]) -> str:
    if "action" in fault:
        times = "once" if fault["times"] == 1 else f"{fault['times']} times"
        skip = f", after {fault['skip']} calls" if fault.get("skip") else ""
        return f"`{fault['action']}` {fault['error']}, {times}{skip}"
    if "timing" in fault:
        return f"next `{fault['timing']}` {fault['seconds']:g} s"
    if "event" in fault:
        if fault.get("lost"):
            return f'next "{fault["event"]}" event lost'
        if "duplicate_after_seconds" in fault:
            return (
                f'next "{fault["event"]}" event twice, {fault["duplicate_after_seconds"]:g} s apart'
            )
        return f'next "{fault["event"]}" event {fault["delay_seconds"]:g} s late'
    if "windows" in fault:
        return f"Windows fails the next {fault['windows']} with `{fault['error']}`"
    return f"next {fault['outcome'].replace('_', ' ')}"


def _status(case: Case) -> str:
    return f"{case.status} (every execution)" if case.counts else case.status


def _reason(case: Case) -> str:
    return "`" + re.sub(r"\.\*", " … ", case.reason).replace("|", " or ") + "`"


def _verdict(case: Case) -> str:
    peak = f"; at most {case.peak} attached at once" if case.peak else ""
    if case.counts:
        counted = ", ".join(f"{n} {status}" for status, n in case.counts.items())
        skipped = f" ({_reason(case)})" if "skipped" in case.counts else ""
        return counted + skipped + peak
    if not case.verdict:
        return f"none: {_reason(case)}, no restore tried"
    if case.verdict == "verified":
        return "verified" + peak
    untagged = ", no tag on the snapshot" if case.verdict == "failed" and not case.tagged else ""
    return f"{case.verdict} ({_reason(case)}){untagged}"


def _left(case: Case) -> str:
    if case.volume_left:
        return (
            f"our volume ({case.volume_left}): the verdict says the cleanup could not finish "
            "and names it, and so does the alert"
        )
    if case.snapshot_left:
        return case.snapshot_left
    if case.snapshot_deleted == "pending":
        return (
            "the consistent snapshot, pending (the verdict names it; the retention deletes it "
            "once completed)"
        )
    if case.snapshot_deleted:
        state = " (in the error state)" if case.snapshot_deleted == "error" else ""
        return (
            f"nothing (the volume and the consistent snapshot{state} deleted; the verdict says so)"
        )
    if case.volumes_created == 0:
        return "nothing (no volume created)"
    if case.volumes_created > 1:
        return f"nothing ({case.volumes_created} volumes created, all deleted)"
    return "nothing (the volume deleted)"


def _alert(case: Case) -> str:
    return "yes" if case.alert else "no"


def section_of(readme: str) -> str:
    """The section as the README has it now ("" if it has none)."""
    start = readme.find(HEADING + "\n")
    if start < 0:
        return ""
    end = readme.find("\n## ", start + len(HEADING))
    return readme[start : end + 1 if end >= 0 else len(readme)]


def main() -> None:
    readme = README.read_text()
    current = section_of(readme)
    if current:
        readme = readme.replace(current, render())
    else:
        readme = readme.replace(FOLLOWING, render() + FOLLOWING, 1)
    README.write_text(readme)


if __name__ == "__main__":
    main()
