"""What each principal actually asked for under ``--iam``, and the least-privilege policy that allows
exactly that (``smemu iam policy PRINCIPAL``): every action with the resources it named, the tag keys its
requests carried as ``aws:TagKeys``, and ``iam:PassedToService`` for the roles it passed. A role session's
calls count for its role too, so the policy can go on the role. Kept in memory since the server started."""
from __future__ import annotations

import threading

from .evaluator import Request

MAX_RESOURCES = 200  # per action: past this, the statement says "*" rather than grow without end


class Activity:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls: dict[str, dict[str, dict]] = {}  # principal ARN → action → {"resources", "tag_keys"}
        self.seen: set[tuple] = set()  # (principal, action, resource, tag keys) already recorded

    def record(self, principal_arn: str, requests: list[Request]) -> None:
        for request in requests:
            tag_keys = request.context.get("aws:tagkeys")  # authorize.py's contexts are lower-cased
            seen_key = (principal_arn, request.action, request.resource, tuple(tag_keys) if tag_keys else ())
            if seen_key in self.seen:  # the common case, a call made before: nothing to add (no lock)
                continue
            self._add(principal_arn, request, tag_keys or [])
            if len(self.seen) > 100_000:
                self.seen.clear()
            self.seen.add(seen_key)

    def _add(self, principal_arn: str, request: Request, tag_keys: list[str]) -> None:
        holders = [principal_arn]
        if ":assumed-role/" in principal_arn:  # arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION → its role
            account = principal_arn.split(":")[4]
            holders.append(f"arn:aws:iam::{account}:role/{principal_arn.split('/')[1]}")
        with self.lock:
            for holder in holders:
                seen = self.calls.setdefault(holder, {}).setdefault(request.action,
                                                                    {"resources": set(), "tag_keys": set()})
                if "*" not in seen["resources"]:  # once "*", every resource is covered
                    if len(seen["resources"]) < MAX_RESOURCES:
                        seen["resources"].add(request.resource)
                    else:
                        seen["resources"] = {"*"}
                seen["tag_keys"].update(tag_keys)

    def principals(self) -> list[str]:
        with self.lock:
            return sorted(self.calls)

    def find(self, name: str) -> str | None:
        """A principal by ARN, user or role name, or "root"."""
        with self.lock:
            if name in self.calls:
                return name
            for arn in self.calls:
                if arn.endswith((f":user/{name}", f":role/{name}")) or (name == "root" and arn.endswith(":root")):
                    return arn
        return None

    def policy(self, principal_arn: str) -> dict:
        """One statement per set of actions that named the same resources and tag keys."""
        with self.lock:
            actions = {action: (frozenset(seen["resources"]), frozenset(seen["tag_keys"]))
                       for action, seen in self.calls.get(principal_arn, {}).items()}
        groups: dict[tuple, list[str]] = {}
        for action, key in sorted(actions.items()):
            resources, tag_keys = key
            groups.setdefault((resources if "*" not in resources else frozenset({"*"}), tag_keys,
                               action == "iam:PassRole"), []).append(action)
        statements = []
        for index, ((resources, tag_keys, pass_role), names) in enumerate(
                sorted(groups.items(), key=lambda item: item[1]), start=1):
            statement = {"Sid": f"Observed{index}", "Effect": "Allow",
                         "Action": names if len(names) > 1 else names[0],
                         "Resource": sorted(resources) if len(resources) > 1 else next(iter(resources))}
            condition = {}
            if tag_keys:
                condition["ForAllValues:StringEquals"] = {"aws:TagKeys": sorted(tag_keys)}
            if pass_role:
                condition["StringEquals"] = {"iam:PassedToService": "sagemaker.amazonaws.com"}
            if condition:
                statement["Condition"] = condition
            statements.append(statement)
        return {"Version": "2012-10-17", "Statement": statements}
