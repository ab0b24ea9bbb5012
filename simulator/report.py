"""What a simulated run shows an operator: verdicts, executions, leftovers, expectations."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SnapshotResult:
    alias: str
    snapshot_id: str
    verdict: str  # verified | failed | skipped
    reason: str
    consistent_snapshot: str | None
    shadow_copies_reverted: list[str]
    content_consistent: bool
    error: str | None
    identity_preserved: bool | None = None
    origin: str = "backup"  # backup | declared | workflow
    rule: str = ""  # the vss-restore:rule tag
    volumes: str = ""  # the vss-restore:volumes tag
    # The simulator's knowledge: drives of the consistent snapshot never reverted and not at
    # the backup's point in time (crash-consistent), by letter.
    drives_unreverted: list[str] = field(default_factory=list)


@dataclass
class ExecutionResult:
    name: str
    status: str
    state_transitions: int
    error: str | None
    cause: str | None
    started_by: str
    started_at: str
    virtual_seconds: float
    output: Any = None


@dataclass
class Report:
    scenario: str
    virtual_seconds: float
    snapshots: list[SnapshotResult]
    executions: list[ExecutionResult]
    volumes_left: list[dict[str, Any]]
    ok: bool
    failures: list[str] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)
    faults_hit: list[str] = field(default_factory=list)
    lambda_invocations: int = 0
    handler_warnings: list[str] = field(default_factory=list)
    # What the SSM console's command history shows: disk tool commands sent, by Action.
    disk_tool_commands: dict[str, int] = field(default_factory=dict)
    # Published to the stack's SNS topics, in order: {"topic", "subject", "message"}.
    alerts: list[dict[str, str]] = field(default_factory=list)
    # Most volumes the workflow had attached at once, by instance alias (helpers always).
    peak_attached: dict[str, int] = field(default_factory=dict)
    # Asynchronous invocations (EventBridge rules, schedules) whose handler raised.
    lambda_errors: list[dict[str, Any]] = field(default_factory=list)
    # The Ledger table, if the stack has one: helper turns still held, by helper alias,
    # and snapshot claims still running.
    locks_held: dict[str, list[str]] = field(default_factory=dict)
    claims_running: list[dict[str, str]] = field(default_factory=list)
    ledger: bool = False  # whether the stack has the Ledger table
    # Calls IAM judged (each role's, simulator/iam): how many it allowed, and each refusal
    # as "principal action resource".
    calls_allowed: int = 0
    calls_refused: list[str] = field(default_factory=list)
    # Each nightly backup's summary: {"instance", "backup", "ok", "problems"} (what it could
    # not back up, as BackupDocument reports it).
    backups: list[dict[str, Any]] = field(default_factory=list)
    # Each reboot of a Windows instance, "alias: why", and each one during which an attached
    # disk carried the boot disk's signature/GUID (the boot manager may start from it).
    reboots: list[str] = field(default_factory=list)
    boot_hazards: list[str] = field(default_factory=list)
    # HelperMode=fleet: each helper launched, {"instance_id", "zone", "seconds" (billed:
    # per second, one minute at least), "cost_usd" (at HelperHourlyPrice), "running"}.
    helpers: list[dict[str, Any]] = field(default_factory=list)
    # A nights step (simulator/nights.py): what its nights made, kept and deleted, and each
    # day's snapshots per drive (NightsResult as a dict); None without one.
    nights: dict[str, Any] | None = None

    def snapshot(self, alias: str) -> SnapshotResult:
        for result in self.snapshots:
            if result.alias == alias:
                return result
        raise KeyError(f"no snapshot {alias} in the report")

    @property
    def state_transitions(self) -> int:
        return sum(e.state_transitions for e in self.executions)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["state_transitions"] = self.state_transitions
        return document

    def table(self) -> str:
        rows = [
            ("snapshot", "id", "verdict", "consistent snapshot", "reverted", "content", "reason")
        ]
        for s in self.snapshots:
            rows.append(
                (
                    s.alias,
                    s.snapshot_id,
                    s.verdict,
                    s.consistent_snapshot or "-",
                    ",".join(_short(i) for i in s.shadow_copies_reverted) or "-",
                    ("consistent" if s.content_consistent else "NOT consistent")
                    if s.consistent_snapshot
                    else "-",
                    _clip(s.reason or s.error or "", 60),
                )
            )
        lines = _columns(rows)
        lines.append("")
        execution_rows = [
            ("execution", "status", "transitions", "virtual s", "started by", "error")
        ]
        for e in self.executions:
            execution_rows.append(
                (
                    e.name,
                    e.status,
                    str(e.state_transitions),
                    f"{e.virtual_seconds:.0f}",
                    e.started_by,
                    _clip(f"{e.error}: {readable_cause(e.cause)}" if e.error else "", 70),
                )
            )
        lines += _columns(execution_rows)
        lines.append("")
        left = ", ".join(v["volume_id"] for v in self.volumes_left) or "none"
        lines.append(f"volumes left: {left}")
        lines.append(
            f"state transitions: {self.state_transitions}   lambda invocations: "
            f"{self.lambda_invocations}   virtual time: {_duration(self.virtual_seconds)}"
        )
        commands = ", ".join(f"{a} {n}" for a, n in self.disk_tool_commands.items()) or "none"
        lines.append(f"disk tool commands: {commands}")
        peaks = ", ".join(f"{a} {n}" for a, n in self.peak_attached.items()) or "none"
        lines.append(f"most volumes attached at once: {peaks}")
        if self.helpers:
            lines += ["", *self._helper_table()]
        if self.nights:
            lines += ["", *nights_table(self.nights)]
        for alert in self.alerts:
            lines.append(f"alert: {_clip(alert['subject'] or alert['message'], 100)}")
        for error in self.lambda_errors:
            lines.append(
                f"lambda error: {error['function']} attempt {error['attempt']} "
                f"({error['trigger']}): {_clip(error['error'] + ': ' + error['message'], 80)}"
            )
        if self.ledger:
            held = "; ".join(f"{a}: {', '.join(h)}" for a, h in self.locks_held.items())
            claims = ", ".join(c["snapshot"] for c in self.claims_running)
            lines.append(f"ledger: turns held {held or 'none'}; claims running {claims or 'none'}")
        for backup in self.backups:
            for problem in backup["problems"]:
                lines.append(f"backup {backup['backup']} of {backup['instance']}: {problem}")
        lines.append(f"IAM: {self.calls_allowed} calls allowed, {len(self.calls_refused)} refused")
        for refused in self.calls_refused:
            lines.append(f"refused: {_clip(refused, 140)}")
        for failure in self.failures:
            lines.append(f"FAILED: {failure}")
        lines.append("OK" if self.ok else "NOT OK")
        return "\n".join(lines)

    def _helper_table(self) -> list[str]:
        """The fleet's helpers as the bill shows them: per second, at HelperHourlyPrice."""
        rows = [("helper", "zone", "billed s", "cost USD", "state")]
        for h in self.helpers:
            state = "RUNNING" if h["running"] else "terminated"
            rows.append(
                (h["instance_id"], h["zone"], f"{h['seconds']:.0f}", f"{h['cost_usd']:.4f}", state)
            )
        seconds = sum(h["seconds"] for h in self.helpers)
        cost = sum(h["cost_usd"] for h in self.helpers)
        return [
            *_columns(rows),
            f"helpers: {len(self.helpers)} launched, {seconds:.0f} s billed, "
            f"${cost:.4f} at HelperHourlyPrice",
        ]


def nights_table(nights: Mapping[str, Any]) -> list[str]:
    """Each day of a nights step: the snapshots of ours per drive after its noon."""
    drives = sorted({d for day in nights["days"] for d in day["snapshots"]})
    rows = [("night", "date", *(f"{d}:" for d in drives), "deleted so far")]
    for day in nights["days"]:
        rows.append(
            (
                day["night"],
                day["date"],
                *(str(day["snapshots"].get(d, 0)) for d in drives),
                str(day["deleted"]),
            )
        )
    held = nights["held"]
    return [
        *_columns(rows),
        f"nights of {nights['instance']}: {nights['count']}, {nights['made']} snapshots made, "
        f"{len(nights['kept'])} kept, {len(nights['deleted'])} deleted, at most "
        f"{nights['max_snapshots_per_drive']} per drive"
        + (f"; held {held} {'LOST' if nights['held_lost'] else 'kept'}" if held else ""),
    ]


def _nights_failures(nights: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> list[str]:
    """What a nights step must never do (lose a held or a not-ours snapshot), and what the
    scenario expects of it (expect.nights)."""
    if nights is None:
        return ["expect.nights, but the scenario has no nights step"] if wanted else []
    failures = []
    if nights["held_lost"]:
        failures.append(f"nights: {nights['held']} was deleted while being restored")
    failures += [f"nights: {alias} (not ours) was deleted" for alias in nights["not_ours_lost"]]
    if "kept" in wanted and sorted(wanted["kept"]) != sorted(nights["kept"]):
        missing = sorted(set(wanted["kept"]) - set(nights["kept"]))
        extra = sorted(set(nights["kept"]) - set(wanted["kept"]))
        failures.append(f"nights: kept lacks {missing}, keeps besides {extra}")
    most = wanted.get("max_snapshots_per_drive")
    if most is not None and nights["max_snapshots_per_drive"] > most:
        failures.append(
            f"nights: a drive held {nights['max_snapshots_per_drive']} snapshots, more than {most}"
        )
    if "deleted" in wanted and len(nights["deleted"]) != wanted["deleted"]:
        failures.append(f"nights: {len(nights['deleted'])} deleted, expected {wanted['deleted']}")
    return failures


def _last_alert_failures(alerts: list[dict[str, str]], wanted: Mapping[str, Any]) -> list[str]:
    if not alerts:
        return ["no alert was published, expected a last one"]
    last = alerts[-1]
    failures = []
    if "subject" in wanted and last["subject"] != wanted["subject"]:
        failures.append(
            f"the last alert's subject is {last['subject']!r}, not {wanted['subject']!r}"
        )
    for text in wanted.get("message_contains", []):
        if text not in last["message"]:
            failures.append(f"the last alert's message lacks {text!r}")
    return failures


def readable_cause(cause: str | None) -> str:
    """A Lambda error's cause is its whole error payload: keep the message."""
    try:
        payload = json.loads(cause or "")
    except json.JSONDecodeError:
        return cause or ""
    if isinstance(payload, dict) and "errorMessage" in payload:
        return str(payload["errorMessage"])
    return cause or ""


def _short(guid: str) -> str:
    return guid[:9] + "}" if len(guid) > 10 else guid


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def check_expectations(report: Report, expect: Mapping[str, Any]) -> list[str]:
    """Every expectation of the scenario that the run did not meet, in words."""
    failures = []
    for alias, wanted in (expect.get("snapshots") or {}).items():
        try:
            result = report.snapshot(alias)
        except KeyError:
            failures.append(f"{alias}: not in the report")
            continue
        if "verdict" in wanted and result.verdict != wanted["verdict"]:
            failures.append(
                f"{alias}: verdict {result.verdict} ({result.reason or result.error}), "
                f"expected {wanted['verdict']}"
            )
        if "reason_contains" in wanted and wanted["reason_contains"] not in (result.reason or ""):
            failures.append(
                f"{alias}: reason {result.reason!r} lacks {wanted['reason_contains']!r}"
            )
        for key in ("rule", "volumes"):
            if key in wanted and getattr(result, key) != wanted[key]:
                failures.append(
                    f"{alias}: {key} is {getattr(result, key)!r}, expected {wanted[key]!r}"
                )
        for key in ("content_consistent", "identity_preserved"):
            if key in wanted and getattr(result, key) != wanted[key]:
                failures.append(f"{alias}: {key} is {getattr(result, key)}, expected {wanted[key]}")
        if (
            "shadow_copies_reverted" in wanted
            and len(result.shadow_copies_reverted) != wanted["shadow_copies_reverted"]
        ):
            failures.append(
                f"{alias}: {len(result.shadow_copies_reverted)} shadow copies reverted, "
                f"expected {wanted['shadow_copies_reverted']}"
            )
    # Whatever the scenario expects: a drive the backup shadowed is never left unreverted
    # under a verified verdict (#18).
    for result in report.snapshots:
        if result.verdict == "verified" and result.drives_unreverted:
            failures.append(
                f"{result.alias}: verified, but drive(s) {', '.join(result.drives_unreverted)} "
                "of its consistent snapshot were never reverted"
            )
    for action, wanted_count in (expect.get("disk_tool_commands") or {}).items():
        sent = report.disk_tool_commands.get(action, 0)
        if sent != wanted_count:
            failures.append(f"{sent} disk tool {action} commands, expected {wanted_count}")
    counts: dict[str, int] = {}
    for execution in report.executions:
        counts[execution.status] = counts.get(execution.status, 0) + 1
    for status, wanted_count in (expect.get("executions") or {}).items():
        if counts.get(status, 0) != wanted_count:
            failures.append(f"{counts.get(status, 0)} executions {status}, expected {wanted_count}")
    limit = expect.get("max_state_transitions")
    if limit is not None and report.state_transitions > limit:
        failures.append(f"{report.state_transitions} state transitions, more than {limit}")
    virtual_limit = expect.get("max_virtual_seconds")
    if virtual_limit is not None and report.virtual_seconds > virtual_limit:
        failures.append(f"{report.virtual_seconds:.0f} virtual seconds, more than {virtual_limit}")
    attached_limit = expect.get("max_attached_per_helper")
    if attached_limit is not None:
        for alias, peak in report.peak_attached.items():
            if peak > attached_limit:
                failures.append(
                    f"{alias} had {peak} volumes attached at once, more than {attached_limit}"
                )
    if expect.get("locks_free"):
        if not report.ledger:
            failures.append("locks_free expected, but the stack has no Ledger table")
        for alias, holders in report.locks_held.items():
            failures.append(f"{alias}: turns still held by {', '.join(holders)}")
        for claim in report.claims_running:
            failures.append(
                f"{claim['snapshot']}: claim still running for {claim['execution'] or '?'}"
            )
    if "helpers_launched" in expect and len(report.helpers) != expect["helpers_launched"]:
        failures.append(
            f"{len(report.helpers)} helpers launched, expected {expect['helpers_launched']}"
        )
    if "alerts" in expect and len(report.alerts) != expect["alerts"]:
        failures.append(f"{len(report.alerts)} alerts published, expected {expect['alerts']}")
    # What a backup could not back up is an operator's alert: a failure unless expected.
    problems = [p for b in report.backups for p in b["problems"]]
    if len(problems) != expect.get("backup_problems", 0):
        failures.append(
            f"{len(problems)} drives not backed up, expected {expect.get('backup_problems', 0)}"
        )
    # A reboot is the SSM agent obeying an exit code 3010, or a scenario step: expected or not.
    if len(report.reboots) != expect.get("reboots", 0):
        failures.append(
            f"{len(report.reboots)} reboots ({'; '.join(report.reboots[:3])}), expected "
            f"{expect.get('reboots', 0)}"
        )
    # Never expected: a reboot with a clone carrying the boot disk's identity attached.
    failures += [f"boot hazard: {hazard}" for hazard in report.boot_hazards]
    # A refusal is a permission the template lacks: a failure unless the scenario expects it.
    refused_expected = expect.get("refused_calls", 0)
    if len(report.calls_refused) != refused_expected:
        failures.append(
            f"{len(report.calls_refused)} calls refused by IAM, expected {refused_expected}: "
            + "; ".join(report.calls_refused[:3])
        )
    nights_wanted = expect.get("nights") or {}
    failures += _nights_failures(report.nights, nights_wanted)
    if "last_alert" in nights_wanted:
        failures += _last_alert_failures(report.alerts, nights_wanted["last_alert"])
    if "lambda_errors" in expect and len(report.lambda_errors) != expect["lambda_errors"]:
        failures.append(
            f"{len(report.lambda_errors)} asynchronous Lambda errors, expected "
            f"{expect['lambda_errors']}"
        )
    return failures
