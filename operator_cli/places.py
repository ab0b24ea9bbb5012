"""Many accounts and Regions: `--profiles a,b --regions x,y` reads each pair on its own.

A profile is an account as the operator reaches it (its own credentials, or a role to
assume in ~/.aws/config); a Region is where a stack of vss-restore runs (one stack per
account and Region, e.g. deployed by a StackSet). One place that cannot be read (no
stack, credentials refused) is reported as such: the others are still read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from operator_cli.account import Account, Where
from operator_cli.errors import OperatorError, explain

# ~/.aws/config profile names: letters, digits and these; Regions as AWS names them.
_PROFILE = re.compile(r"^[A-Za-z0-9_.@+/-]{1,128}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$")
MAX_PLACES = 100

T = TypeVar("T")


@dataclass(frozen=True)
class Unread:
    """A place that could not be read, and why."""

    place: str
    reason: str


def add_options(parser: object) -> None:
    group = parser.add_argument_group(  # type: ignore[attr-defined]
        "many accounts and Regions (one stack of vss-restore in each)"
    )
    group.add_argument(
        "--profiles",
        metavar="A,B",
        help="read the account of each AWS profile (instead of --profile)",
    )
    group.add_argument(
        "--regions",
        metavar="X,Y",
        help="read each Region (instead of --region); with --profiles, each Region of each",
    )


def wanted(args: object) -> bool:
    return bool(getattr(args, "profiles", None) or getattr(args, "regions", None))


def expand(where: Where, profiles: str | None, regions: str | None) -> list[Where]:
    """Each profile in each Region, in the order given, each pair once."""
    if profiles and where.profile:
        raise OperatorError("give --profile or --profiles, not both")
    if regions and where.region:
        raise OperatorError("give --region or --regions, not both")
    if where.state_machine_arn:
        raise OperatorError(
            "--state-machine names one workflow: with --profiles/--regions each place's "
            "stack (--stack) says where its workflow is"
        )
    names: list[str | None] = [*_listed(profiles, _PROFILE, "--profiles", "a profile name")]
    places: list[str | None] = [
        *_listed(regions, _REGION, "--regions", "a Region such as eu-west-1")
    ]
    names = names or [where.profile]
    places = places or [where.region]
    found = [replace(where, profile=p, region=r) for p in names for r in places]
    if len(found) > MAX_PLACES:
        raise OperatorError(f"{len(found)} places (profiles x Regions): at most {MAX_PLACES}")
    return found


def _listed(text: str | None, shape: re.Pattern[str], option: str, what: str) -> list[str]:
    if text is None:
        return []
    items = [item.strip() for item in text.split(",")]
    for item in items:
        if not shape.match(item):
            raise OperatorError(f"{option}: {item!r} is not {what}")
    return list(dict.fromkeys(items))


def label(account: Account) -> str:
    """How a place is named to the operator: account, Region and the profile that reached it."""
    profile = f" (profile {account.where.profile})" if account.where.profile else ""
    return f"account {account.account_id}, {account.region}{profile}"


def _unreadable(account: Account) -> str:
    profile = account.where.profile or "(default)"
    return f"profile {profile}, Region {account.where.region or account.region_for_messages()}"


def read_each(
    places: list[Where], read: Callable[[Account], T]
) -> tuple[list[tuple[Account, T]], list[Unread]]:
    """`read` in every place; what it gave where it could, and why not elsewhere."""
    done: list[tuple[Account, T]] = []
    unread: list[Unread] = []
    for where in places:
        account = Account(where)
        try:
            account.account_id  # noqa: B018 (the credentials first: each place says whose)
            done.append((account, read(account)))
        except OperatorError as exc:
            unread.append(Unread(_unreadable(account), str(exc)))
        except (BotoCoreError, ClientError) as exc:
            problem = explain(exc, account.region_for_messages())
            unread.append(Unread(_unreadable(account), str(problem)))
    return done, unread
