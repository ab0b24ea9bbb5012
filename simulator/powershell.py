"""The PowerShell scripts the simulated Windows can run through AWS-RunPowerShellScript.

No PowerShell runs here: each script the project sends is known by its exact text (one
source of truth: the module that sends it) and answered from the simulated machine, as
simulator/windows.py answers the disk tool. Any other script fails, as one PowerShell could
not run would: the simulator never pretends to have run something it does not model.
"""

from collections.abc import Callable

from operator_cli import doctor_instances
from simulator.windows import WindowsHost

# (stdout, stderr, exit code)
Answer = tuple[str, str, int]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _module_listing(host: WindowsHost) -> Answer:
    """doctor's `Get-Module -ListAvailable -Name AWS.Tools.EC2`, newest version first."""
    module = doctor_instances.MODULE
    version = host.powershell_modules.get(module)
    if version is None:
        return f"{module}: not installed\n", "", 0
    return f"{module}: {version}\n", "", 0


KNOWN: dict[str, Callable[[WindowsHost], Answer]] = {
    doctor_instances.SCRIPT: _module_listing,
}


def run(host: WindowsHost | None, script: str) -> Answer:
    if host is None:
        return "", "the simulated instance has no Windows to run PowerShell on", 1
    answer = KNOWN.get(script.replace("\r\n", "\n").strip())
    if answer is None:
        return "", "the simulator runs no such PowerShell script (simulator/powershell.py)", 1
    return answer(host)
