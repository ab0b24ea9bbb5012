"""`make local-invoke`: sam build, then `sam local invoke` every function with its samples.

    python -m local.invoke [--strict] [--rebuild-image] [--runtime-python PATH]

The handlers run in a Lambda container (the official image if it is on this machine, else a
stand-in built here: local/image.py) and talk to the simulator's moto world served over HTTP
on the docker bridge (local/seeding.py). Each sample runs once, in the order a restore calls
the functions, and each result is checked (local/plan.py).

Exit status: 0 every invocation gave what the plan expects, or no Docker engine can run here
(said plainly; skipped); 1 a check failed or something broke; 2 no Docker engine and
--strict (or LOCAL_INVOKE_STRICT=1).
"""

import argparse
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from local.engine import NoEngine, Say, ensure_engine
from local.image import Image, RuntimePython, choose_image, lambda_architecture
from local.plan import PLAN, Step, mismatches, resolve
from local.seeding import LocalAccount
from tools.cfn_template import load_template

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "template.yaml"
EVENTS = REPO / "events"
WORK = Path(__file__).resolve().parent / ".work"
SAM = Path(sys.executable).with_name("sam")
REGION = "us-east-1"
INVOKE_TIMEOUT_SECONDS = 300


class Failed(Exception):
    """A check failed or a step broke; the message says which and why."""


def template_functions() -> dict[str, dict[str, Any]]:
    resources = load_template(TEMPLATE)["Resources"]
    return {
        name: resource
        for name, resource in resources.items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }


def template_runtime_and_architecture() -> tuple[str, str]:
    function = load_template(TEMPLATE).get("Globals", {}).get("Function", {})
    architectures = function.get("Architectures") or ["x86_64"]
    return str(function.get("Runtime", "")), str(architectures[0])


def find_runtime_python() -> str:
    """As the Makefile finds it: the template's runtime (python3.12) on PATH, then pyenv's."""
    name = template_runtime_and_architecture()[0] or "python3.12"
    directories = os.environ.get("PATH", "").split(os.pathsep)
    candidates = [str(Path(d) / name) for d in directories if d]
    candidates += sorted(str(p) for p in Path.home().glob(f".pyenv/versions/*/bin/{name}"))
    for candidate in candidates:
        if os.access(candidate, os.X_OK) and (
            subprocess.run([candidate, "-c", ""], capture_output=True, check=False).returncode == 0
        ):
            return candidate
    raise Failed(f"no working {name} found for sam build (on PATH or in ~/.pyenv/versions)")


def local_template(architecture: str, work: Path) -> Path:
    """template.yaml for this machine: its architecture, absolute code paths, and
    AWS_ENDPOINT_URL declared (sam local invoke --env-vars sets declared variables only)."""
    text = TEMPLATE.read_text(encoding="utf-8")

    def once(pattern: str, replace: Callable[[re.Match[str]], str], what: str) -> None:
        nonlocal text
        text, count = re.subn(pattern, replace, text, flags=re.MULTILINE)
        if count < 1:
            raise Failed(f"template.yaml has no {what}: local/invoke.py must follow it")

    once(
        r"^(    Architectures: )\[\w+\]$",
        lambda m: f"{m.group(1)}[{architecture}]",
        "Globals Function Architectures",
    )
    for key in ("CodeUri", "DefinitionUri"):
        once(
            rf"^(\s+{key}: )([\w./-]+)$",
            lambda m: m.group(1) + _absolute(m.group(2)),
            key,
        )
    once(
        r"^(Globals:\n(?:[ ].*\n|\n)*?)(\s+)(Variables:\n)",
        lambda m: (
            f"{m.group(1)}{m.group(2)}{m.group(3)}"
            f'{m.group(2)}  AWS_ENDPOINT_URL: ""\n'
            f'{m.group(2)}  POWERTOOLS_TRACE_DISABLED: "true"\n'
        ),
        "Globals Function Environment Variables",
    )
    path = work / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _absolute(relative: str) -> str:
    """A path of template.yaml made absolute (the local copy lives elsewhere)."""
    return str((REPO / relative).resolve()) + ("/" if relative.endswith("/") else "")


def sam_environment(
    runtime_python: str, endpoint: str = "", access_key: str = ""
) -> dict[str, str]:
    environment = {
        **os.environ,
        "PATH": f"{Path(runtime_python).parent}:{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": REGION,
    }
    environment.pop("AWS_PROFILE", None)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        environment.setdefault(name, "testing")
    if access_key:
        # sam local invoke hands these credentials to the container: the function signs its
        # calls as its own role, and the simulator's server judges them against that role.
        environment["AWS_ACCESS_KEY_ID"] = access_key
        environment.pop("AWS_SESSION_TOKEN", None)
    if endpoint:
        # sam local invoke asks STS for the account ID first: moto answers, nothing else.
        environment["AWS_ENDPOINT_URL"] = endpoint
    return environment


def build_inputs(template: Path, python: RuntimePython) -> str:
    """A hash of what sam build's output depends on: the template, the functions' code and
    pinned requirements, SAM's and the runtime's versions."""
    digest = hashlib.sha256()
    for part in (
        template.read_text(encoding="utf-8"),
        metadata.version("aws-sam-cli"),
        python.full_version,
    ):
        digest.update(part.encode() + b"\0")
    for path in sorted((REPO / "functions").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def sam_build(template: Path, python: RuntimePython, work: Path, say: Say) -> Path:
    """sam build into local/.work/build, unless its inputs are those of the last build there
    (SAM's own --cached still copies every function's 38 MB again: minutes on a busy disk)."""
    build = work / "build"
    stamp = build / ".local-invoke-inputs"
    inputs = build_inputs(template, python)
    if (build / "template.yaml").exists() and stamp.exists() and stamp.read_text() == inputs:
        say(f"sam build: skipped, nothing changed since the last build ({build.relative_to(REPO)})")
        return build / "template.yaml"
    started = time.monotonic()
    done = subprocess.run(
        [str(SAM), "build", "--template-file", str(template), "--build-dir", str(build)],
        cwd=REPO,
        env=sam_environment(python.executable),
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    (work / "sam-build.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        raise Failed("sam build failed:\n" + _tail(done.stdout + done.stderr, 25))
    stamp.write_text(inputs)
    seconds = time.monotonic() - started
    say(f"sam build: {seconds:.0f} s ({build.relative_to(REPO)}; log {work.name}/sam-build.log)")
    return build / "template.yaml"


def invoke(
    step: Step,
    index: int,
    account: LocalAccount,
    built: Path,
    env_vars: Path,
    image: Image,
    runtime_python: str,
    work: Path,
) -> tuple[Any, float]:
    """One sam local invoke of the step's sample (IDs replaced); its parsed response."""
    sample = (EVENTS / f"{step.sample}.json").read_text(encoding="utf-8")
    event = work / "events" / f"{index:02d}-{step.sample}.json"
    event.parent.mkdir(exist_ok=True)
    event.write_text(account.rewrite(sample), encoding="utf-8")
    command = [
        str(SAM),
        "local",
        "invoke",
        step.function,
        "--template-file",
        str(built),
        "--event",
        str(event),
        "--env-vars",
        str(env_vars),
        "--region",
        REGION,
        "--skip-pull-image",
    ]
    if not image.official:
        command += ["--invoke-image", image.tag]
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=REPO,
        env=sam_environment(
            runtime_python, account.endpoint, account.credentials_for(step.function)
        ),
        capture_output=True,
        text=True,
        check=False,
        timeout=INVOKE_TIMEOUT_SECONDS,
    )
    seconds = time.monotonic() - started
    log = work / "logs" / f"{index:02d}-{step.function}-{step.sample}.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(
        f"$ {' '.join(command)}\n\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}",
        encoding="utf-8",
    )
    if done.returncode != 0:
        raise Failed(f"sam local invoke exited {done.returncode} ({log}):\n{_tail(done.stderr)}")
    try:
        return _response(done.stdout), seconds
    except ValueError:
        raise Failed(f"no JSON response on stdout ({log}):\n{_tail(done.stderr)}") from None


def _response(stdout: str) -> Any:
    text = stdout.strip()
    try:
        return json.loads(text)
    except ValueError:
        return json.loads(text.splitlines()[-1])


def judge(step: Step, response: Any, account: LocalAccount) -> list[str]:
    error = response.get("errorType") if isinstance(response, dict) else None
    if step.error:
        if error == step.error:
            return []
        return [f"expected the error {step.error}, got {error or 'a result'}: {response}"]
    if error:
        return [f"{error}: {response.get('errorMessage')}"]
    return mismatches(response, resolve(step.expect, account))


def learn(
    step: Step, response: dict[str, Any], account: LocalAccount, seen: dict[str, str]
) -> None:
    for fake, key in step.learn.items():
        account.learn(fake, str(response[key]))
    for name, key in step.remember.items():
        seen[name] = str(response[key])


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join("  " + line for line in text.strip().splitlines()[-lines:])


@contextmanager
def _only_run(work: Path) -> Iterator[None]:
    """One run per checkout at a time: they share local/.work."""
    work.mkdir(parents=True, exist_ok=True)
    with (work / "lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Failed("another make local-invoke runs in this checkout") from None
        yield


def run(strict: bool, rebuild_image: bool, runtime_python: str, out: TextIO) -> int:
    started = time.monotonic()

    def say(line: str) -> None:
        print(f"local-invoke: {line}", file=out, flush=True)

    try:
        engine = ensure_engine(say)
    except NoEngine as reason:
        return _skip(str(reason), strict, say)
    phases = {"engine": time.monotonic() - started}
    runtime, template_architecture = template_runtime_and_architecture()
    python = RuntimePython.probe(runtime_python)
    if runtime != f"python{python.version}":
        raise Failed(f"{runtime_python} is Python {python.version}; template.yaml says {runtime}")
    architecture = lambda_architecture()
    mark = time.monotonic()
    try:
        image = choose_image(python, architecture, WORK, say, rebuild=rebuild_image)
    except NoEngine as reason:
        return _skip(str(reason), strict, say)
    phases["image"] = time.monotonic() - mark
    if image.official:
        say(f"image: {image.note}")
    else:
        say(f"image: {image.note}; sam local invoke runs with --invoke-image {image.tag}")
    if architecture != template_architecture:
        say(
            f"architecture: template.yaml says {template_architecture}, this machine runs "
            f"{architecture} containers (no emulation): the local copy of the template "
            f"({WORK.relative_to(REPO)}/template.yaml) says {architecture}, and sam build "
            f"takes {architecture} wheels"
        )
    mark = time.monotonic()
    built = sam_build(local_template(architecture, WORK), python, WORK, say)
    phases["sam build"] = time.monotonic() - mark

    functions = template_functions()
    unplanned = sorted(set(functions) - {step.function for step in PLAN})
    if unplanned:
        raise Failed(f"functions with no sample in local/plan.py: {', '.join(unplanned)}")
    mark = time.monotonic()
    with LocalAccount(engine.gateway) as account:
        env_vars = account.env_vars_file(WORK / "env.json")
        say(
            f"moto (the simulator's account, seeded) at {account.endpoint}; "
            f"{len(PLAN)} invocations of {len(functions)} functions"
        )
        seen: dict[str, str] = {}
        for index, step in enumerate(PLAN, 1):
            response, seconds = invoke(
                step, index, account, built, env_vars, image, python.executable, WORK
            )
            problems = judge(step, response, account)
            if not problems:
                learn(step, response, account, seen)
                if step.then_advance:
                    account.advance(step.then_advance)
                if step.check is not None:
                    problems = step.check(account, {**account.rewrites, **seen})
            shown = json.dumps(response)
            say(
                f"{'ok ' if not problems else 'BAD'} {index:2d} {seconds:4.1f} s  "
                f"{step.function} <- {step.sample}: {shown[:110]}{'…' if len(shown) > 110 else ''}"
            )
            if problems:
                raise Failed(
                    f"{step.function} with events/{step.sample}.json ({step.means}):\n"
                    + "\n".join(f"  {problem}" for problem in problems)
                )
        judged = account.judged_calls(set(functions))
        refused = [str(c) for c in judged if not c.allowed]
        if refused:
            raise Failed("IAM refused calls of the functions:\n  " + "\n  ".join(refused))
        roles = {c.principal for c in judged}
        if not judged:
            # The containers' calls reached the server unsigned by their roles: unjudged.
            raise Failed("no call of the functions was judged against its role (credentials?)")
        say(f"IAM: {len(judged)} calls of {len(roles)} function roles judged, 0 refused")
    phases["invocations"] = time.monotonic() - mark
    total = time.monotonic() - started
    say(
        f"passed: {len(PLAN)} invocations of {len(functions)} functions, every result as "
        f"expected, in {total:.0f} s ("
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in phases.items())
        + ")"
    )
    return 0


def _skip(reason: str, strict: bool, say: Callable[[str], None]) -> int:
    if strict:
        say(f"FAILED (strict): no Docker engine can run here: {reason}")
        return 2
    say(f"SKIPPED: no Docker engine can run here: {reason} (LOCAL_INVOKE_STRICT=1 fails instead)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.invoke", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        default=os.environ.get("LOCAL_INVOKE_STRICT", "").lower() in {"1", "true", "yes"},
        help="no Docker engine is a failure (exit 2), not a skip (also LOCAL_INVOKE_STRICT=1)",
    )
    parser.add_argument(
        "--rebuild-image",
        action="store_true",
        help="build the stand-in image again even if this recipe's is there",
    )
    parser.add_argument(
        "--runtime-python",
        help="the functions' runtime Python (sam build needs it; the stand-in copies it); "
        "default: the first that runs of template.yaml's runtime on PATH, then pyenv's",
    )
    args = parser.parse_args(argv)
    out = sys.stdout
    try:
        with _only_run(WORK):
            runtime_python = args.runtime_python or find_runtime_python()
            return run(args.strict, args.rebuild_image, runtime_python, out)
    except (Failed, RuntimeError, subprocess.SubprocessError) as failure:
        print(f"local-invoke: FAILED: {failure}", file=out, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
