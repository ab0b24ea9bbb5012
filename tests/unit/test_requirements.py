"""The two pinned sets: `make demo` installs requirements-demo.txt only, `make test` adds
requirements-dev.txt; both hash-checked (pip --require-hashes)."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What the demo runs: the simulator, the handlers and the operator's command.
DEMO_CODE = ("simulator", "functions/vss_restore", "operator_cli", "tools/cfn_template.py")
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)")


def requirements(name: str) -> dict[str, tuple[str, frozenset[str]]]:
    """Each pinned distribution (normalized name) -> its version and its hashes."""
    found: dict[str, tuple[str, frozenset[str]]] = {}
    current = ""
    for line in (REPO / name).read_text(encoding="utf-8").splitlines():
        pin = PIN.match(line)
        if pin:
            current = normalized(pin.group(1))
            found[current] = (pin.group(2), frozenset())
        for digest in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            version, hashes = found[current]
            found[current] = (version, hashes | {digest})
    return found


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_distributions() -> set[str]:
    """The installed distributions the demo's code imports at its top levels."""
    modules: set[str] = set()
    for place in DEMO_CODE:
        path = REPO / place
        for source in [path] if path.is_file() else sorted(path.rglob("*.py")):
            tree = ast.parse(source.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules.add(node.module.split(".")[0])
    owners = packages_distributions()
    return {
        normalized(dist)
        for module in modules - set(sys.stdlib_module_names)
        for dist in owners.get(module, [])
        # mypy_boto3_* stubs are imported under TYPE_CHECKING only.
        if not module.startswith("mypy_boto3")
    }


def test_every_requirement_is_pinned_with_hashes() -> None:
    for name in ("requirements-demo.txt", "requirements-dev.txt"):
        pinned = requirements(name)
        assert pinned, name
        unhashed = sorted(dist for dist, (_, hashes) in pinned.items() if not hashes)
        assert unhashed == [], f"{name}: {unhashed}"


def test_the_demo_set_is_the_dev_set_s_own_pins() -> None:
    demo, dev = requirements("requirements-demo.txt"), requirements("requirements-dev.txt")

    assert set(demo) < set(dev)
    for dist, (version, hashes) in demo.items():
        assert dev[dist][0] == version, dist
        assert hashes <= dev[dist][1], dist


def test_the_demo_set_holds_what_the_demo_imports() -> None:
    demo = requirements("requirements-demo.txt")

    missing = sorted(imported_distributions() - set(demo) - {"vss-restore"})

    assert missing == [], f"imported by the demo's code, not in requirements-demo.txt: {missing}"


def test_the_demo_set_leaves_out_the_heavy_checkers() -> None:
    demo = requirements("requirements-demo.txt")

    assert not {"checkov", "aws-sam-cli", "mypy", "cfn-lint", "numpy"} & set(demo)
