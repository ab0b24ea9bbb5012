"""The Lambda image `sam local invoke` runs the handlers in.

The official one (public.ecr.aws/lambda/python:3.12-<arch>) when it is on this machine
already; otherwise a stand-in built here, from Debian packages and PyPI only: a debootstrap
`minbase` root file system with the libraries CPython needs, the runtime's own CPython
copied from this machine (pyenv's build is self-contained), and the runtime interface
client (awslambdaric) plus boto3 from PyPI in /var/runtime, started by /var/runtime/bootstrap
as in the official image. SAM adds its emulator (aws-lambda-rie) on top, as it does to the
official image.

The tag carries a hash of the recipe: a changed recipe is a new image, so SAM's derived
`<repository>:rapid-<arch>` image (its name ignores the base's tag) is new too.
"""

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from local.engine import NoEngine, apt_install, is_root

Say = Callable[[str], None]

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "image-requirements.txt"
BOOTSTRAP = HERE / "bootstrap"
REPOSITORY = "vss-restore-local"
OFFICIAL = "public.ecr.aws/lambda/python:{version}-{arch}"

SUITE = "bookworm"
MIRROR = os.environ.get("LOCAL_INVOKE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What CPython's own extension modules link against (ssl, ctypes, sqlite3, lzma, bz2, ...).
LIBRARIES = (
    "libssl3",
    "libffi8",
    "libsqlite3-0",
    "libbz2-1.0",
    "liblzma5",
    "zlib1g",
    "libexpat1",
    "libreadline8",
    "libncursesw6",
    "libuuid1",
    "libnsl2",
    "libtirpc3",
)
# Not needed in a Lambda runtime, and large: the test suite, Tk, IDLE, the static library.
PYTHON_EXCLUDES = (
    "./lib/python{v}/test",
    "./lib/python{v}/idlelib",
    "./lib/python{v}/tkinter",
    "./lib/python{v}/turtledemo",
    "./lib/python{v}/lib-dynload/_tkinter*",
    "./lib/python{v}/config-{v}-*",
    "./lib/python{v}/site-packages",
    "./lib/libpython{v}.a",
)
# The official image's environment, as far as the handlers and the client read it.
ENVIRONMENT = (
    "PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin",
    "LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib"
    ":/var/task:/var/task/lib:/opt/lib",
    "PYTHONPATH=/var/runtime",
    "LAMBDA_TASK_ROOT=/var/task",
    "LAMBDA_RUNTIME_DIR=/var/runtime",
    "LANG=en_US.UTF-8",
    "TZ=:/etc/localtime",
)
RECIPE_VERSION = 1  # bump when the steps below change in a way the hash cannot see


@dataclass(frozen=True)
class RuntimePython:
    executable: str
    version: str  # "3.12"
    full_version: str
    prefix: Path

    @classmethod
    def probe(cls, executable: str) -> "RuntimePython":
        code = (
            "import json, sys; print(json.dumps([f'{sys.version_info[0]}.{sys.version_info[1]}',"
            " sys.version, sys.base_prefix, sys.executable]))"
        )
        done = subprocess.run(
            [executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(f"{executable} does not run: {done.stderr.strip()}")
        version, full_version, prefix, real = json.loads(done.stdout)
        return cls(real or executable, version, full_version, Path(prefix))


@dataclass(frozen=True)
class Image:
    tag: str
    official: bool
    built: bool
    note: str


def lambda_architecture() -> str:
    """This machine's Lambda architecture: the only one its containers run without emulation."""
    machine = platform.machine().lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )


def recipe_hash(python: RuntimePython, architecture: str) -> str:
    recipe = {
        "version": RECIPE_VERSION,
        "suite": SUITE,
        "libraries": LIBRARIES,
        "python": [python.full_version, str(python.prefix)],
        "python_excludes": PYTHON_EXCLUDES,
        "requirements": REQUIREMENTS.read_text(encoding="utf-8"),
        "bootstrap": BOOTSTRAP.read_text(encoding="utf-8"),
        "environment": ENVIRONMENT,
        "architecture": architecture,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def stand_in_tag(python: RuntimePython, architecture: str) -> str:
    return (
        f"{REPOSITORY}/python{python.version}-{architecture}-"
        f"{recipe_hash(python, architecture)}:latest"
    )


def image_exists(tag: str) -> bool:
    return _docker("image", "inspect", tag).returncode == 0


def choose_image(
    python: RuntimePython, architecture: str, work: Path, say: Say, rebuild: bool = False
) -> Image:
    official = OFFICIAL.format(version=python.version, arch=architecture)
    if not rebuild and image_exists(official):
        return Image(official, official=True, built=False, note=f"the official image {official}")
    tag = stand_in_tag(python, architecture)
    why = (
        f"the official image {official} is not on this machine (pull it to use it instead; "
        "nothing here pulls)"
    )
    if not rebuild and image_exists(tag):
        return Image(tag, official=False, built=False, note=f"{why}: stand-in {tag} (cached)")
    # SAM reuses <repository>:rapid-<arch> whatever the base: a new base needs a new one.
    _docker("image", "rm", "--force", tag, tag.replace(":latest", f":rapid-{architecture}"))
    started = time.monotonic()
    build_stand_in(tag, python, work, say)
    _remove_stale(tag, say)
    seconds = time.monotonic() - started
    note = f"{why}: stand-in {tag} (built, {seconds:.0f} s)"
    return Image(tag, official=False, built=True, note=note)


def build_stand_in(tag: str, python: RuntimePython, work: Path, say: Say) -> None:
    if not is_root():
        raise NoEngine("building the stand-in Lambda image (debootstrap) needs root")
    if python.prefix == Path("/usr") or not (python.prefix / "bin").is_dir():
        raise RuntimeError(
            f"{python.executable} is installed under {python.prefix}: the stand-in image needs "
            "a self-contained CPython (pyenv's, for instance) to copy"
        )
    if not shutil.which("debootstrap"):
        apt_install(["debootstrap"], say)
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=work) as temporary:
        root = Path(temporary) / "rootfs"
        say(f"stand-in image: debootstrap --variant=minbase {SUITE} from {MIRROR}")
        _check(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(LIBRARIES)}",
                SUITE,
                str(root),
                MIRROR,
            ],
            timeout=1200,
        )
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / leftover).glob("*"):
                if entry.is_file():
                    entry.unlink()
        say(f"stand-in image: CPython {python.full_version.split()[0]} from {python.prefix}")
        lang = root / "var/lang"
        lang.mkdir(parents=True)
        excludes = [f"--exclude={e.format(v=python.version)}" for e in PYTHON_EXCLUDES]
        packed = subprocess.Popen(
            ["tar", "-C", str(python.prefix), *excludes, "-cf", "-", "."],
            stdout=subprocess.PIPE,
        )
        _check(["tar", "-C", str(lang), "-xf", "-"], stdin=packed.stdout)
        if packed.wait() != 0:
            raise RuntimeError(f"copying {python.prefix} failed")
        (lang / f"lib/python{python.version}/site-packages").mkdir(exist_ok=True)
        say("stand-in image: awslambdaric and boto3 from PyPI (local/image-requirements.txt)")
        runtime = root / "var/runtime"
        _check(
            [
                python.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "--target",
                str(runtime),
                "-r",
                str(REQUIREMENTS),
            ],
            timeout=600,
        )
        shutil.copy2(BOOTSTRAP, runtime / "bootstrap")
        (runtime / "bootstrap").chmod(0o755)
        for directory in ("var/task", "opt", "tmp"):
            (root / directory).mkdir(parents=True, exist_ok=True)
        (root / "tmp").chmod(0o1777)
        say(f"stand-in image: docker import as {tag}")
        changes = [f"--change=ENV {variable}" for variable in ENVIRONMENT]
        changes += ["--change=WORKDIR /var/task", f"--change=LABEL vss-restore.recipe={tag}"]
        packed = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(root), "-cf", "-", "."], stdout=subprocess.PIPE
        )
        _check(["docker", "import", *changes, "-", tag], stdin=packed.stdout, timeout=600)
        if packed.wait() != 0:
            raise RuntimeError("packing the root file system failed")
    smoke = _docker(
        "run",
        "--rm",
        "--network=none",
        "--entrypoint=/var/lang/bin/python3",
        tag,
        "-c",
        "import awslambdaric, boto3, sys; print(sys.version.split()[0], boto3.__version__)",
    )
    if smoke.returncode != 0:
        raise RuntimeError(f"the stand-in image does not run Python: {smoke.stderr.strip()}")
    say(f"stand-in image: Python {smoke.stdout.strip()} (boto3) runs in it")


def _remove_stale(current: str, say: Say) -> None:
    """Stand-ins of older recipes, and SAM's images derived from them."""
    listed = _docker(
        "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={REPOSITORY}/*"
    )
    repository = current.split(":")[0]
    stale = [
        image
        for image in listed.stdout.split()
        if image.split(":")[0] != repository and image.startswith(f"{REPOSITORY}/")
    ]
    if stale:
        _docker("image", "rm", "--force", *stale)
        say(f"removed stand-in images of older recipes: {', '.join(stale)}")


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False, timeout=300
    )


def _check(args: list[str], timeout: float = 300, stdin: IO[bytes] | None = None) -> None:
    done = subprocess.run(
        args,
        stdin=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise RuntimeError(f"{' '.join(args[:3])} failed:\n  " + "\n  ".join(output))


if __name__ == "__main__":  # python -m local.image PYTHON: print the tag this recipe gives
    print(stand_in_tag(RuntimePython.probe(sys.argv[1]), lambda_architecture()))
