"""IAM's and STS's state on disk: moto's IAM and STS backends, written after every change, restored at start.

IAM changes are few and small, so the whole state (users, groups, roles, customer managed policies and
their versions, inline policies, access keys, attachments; STS's issued session credentials) is pickled
into one file, written to a temporary name, fsynced and renamed over the old one before the change is
acknowledged: a ``kill -9`` keeps what was answered. AWS's managed policies are moto's data and are not
stored; attachments to them are re-linked to moto's objects at start.
"""
from __future__ import annotations

import logging
import os
import pickle
import time
from pathlib import Path

log = logging.getLogger("smemu.iam")

_NOT_STORED = ("aws_managed_policies", "account_summary")  # moto's data, and a view that refers back to the backend


class IamStore:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def restore(self, iam, sts) -> bool:
        if not self.path.exists():
            return False
        try:
            state = pickle.loads(self.path.read_bytes())
            state["iam"]["managed_policies"], state["sts"]  # the shape this version writes
        except Exception as exc:  # another moto's pickle, or a damaged file: keep it, never write over it
            kept = self.path.with_name(f"{self.path.name}.unreadable-{int(time.time())}")
            os.replace(self.path, kept)
            log.error("IAM's stored state could not be read (%s: %s); it is kept as %s and IAM starts empty",
                      type(exc).__name__, exc, kept)
            return False
        customer = state["iam"].pop("managed_policies")
        iam.__dict__.update(state["iam"])
        iam.managed_policies.update(customer)
        for principal in [*iam.users.values(), *iam.roles.values(), *iam.groups.values()]:
            for arn in list(principal.managed_policies):
                principal.managed_policies[arn] = iam.managed_policies.get(arn, principal.managed_policies[arn])
        sts.__dict__.update(state["sts"])
        return True

    def save(self, iam, sts) -> None:
        stored = {k: v for k, v in iam.__dict__.items() if k not in _NOT_STORED}
        stored["managed_policies"] = {arn: p for arn, p in iam.managed_policies.items()
                                      if not arn.startswith("arn:aws:iam::aws:policy/")}
        data = pickle.dumps({"iam": stored, "sts": dict(sts.__dict__)})
        partial = self.path.with_suffix(".partial")
        with open(partial, "wb") as target:
            target.write(data)
            target.flush()
            os.fsync(target.fileno())
        os.replace(partial, self.path)
