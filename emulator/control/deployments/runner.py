"""One guarded deployment, driven step by step: shift (or replace a batch), bake while watching the alarms,
then finish, or roll back at the first alarm in ALARM or past MaximumExecutionTimeoutInSeconds.

What the deployment acts on (an endpoint's blue and green fleets, an endpoint's instances in rolling
batches, an inference component's copies) is a ``Target``; the ``Deployment`` only knows the plan, the
clock and the alarms. Its progress is data (``state``: phase, step, deadline), written through the
target's ``save`` at every change, so a restarted smemu knows how far it got (``recover`` decides).
Every wait is on the monitoring clock, so ``--time-scale`` shortens bakes and termination waits too.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Protocol

from ...clock import Clock
from .plan import Plan

log = logging.getLogger("smemu.deployments")
POLL_SECONDS = 0.05  # real seconds between looks at the alarms during a bake

# Phases, as the state records them.
PROVISIONING, SHIFTING, BAKING, TERMINATING, ROLLING_BACK = (
    "Provisioning", "ActivatingTraffic", "Baking", "Terminating", "RollingBack")


class Target(Protocol):
    async def provision(self) -> None:
        """Blue/green: start the green fleet (no traffic yet). Rolling: nothing."""

    async def step(self, index: int, value: float) -> None:
        """Blue/green: give green ``value`` of the traffic. Rolling: have ``value`` new units serving."""

    async def finish(self) -> None:
        """The deployment succeeded: the new configuration is the current one; the old fleet goes."""

    async def roll_back(self, reason: str, batch: int | None) -> None:
        """Back to the old configuration (all traffic to it), then record ``reason``."""

    def save(self, state: dict, message: str) -> None:
        """Persist the state and show ``message`` where DescribeEndpoint / the component shows progress."""


class Deployment:
    def __init__(self, plan: Plan, target: Target, clock: Clock, alarm_state: Callable[..., str | None],
                 state: dict | None = None):
        self.plan = plan
        self.target = target
        self.clock = clock
        self.alarm_state = alarm_state
        self.state = state or {}

    def _save(self, phase: str, message: str, **extra):
        self.state.pop("BakeEndsAtWall", None)
        self.state.update(Phase=phase, Message=message[:1024], **extra)
        self.target.save(self.state, message)

    async def run(self) -> bool:
        """True when the new configuration is in service; False when it was rolled back."""
        plan = self.plan
        self.state.setdefault("StartedAt", self.clock.now())
        if plan.timeout and "Deadline" not in self.state:
            self.state["Deadline"] = self.clock.now() + plan.timeout
        self._save(PROVISIONING, "Provisioning the new fleet" + (f". {plan.note}" if plan.note else ""))
        await self.target.provision()
        for index, value in enumerate(plan.steps):
            reason = self._tripped()
            if reason:
                await self._roll_back(reason)
                return False
            self._save(SHIFTING, self._describe_step(index, value), Step=index)
            await self.target.step(index, value)
            if plan.bake_seconds > 0:
                self._save(BAKING, f"{self._describe_step(index, value)}; baking for {plan.bake_seconds:g} s"
                           + (f", watching {', '.join(plan.alarms)}" if plan.alarms else ""), Step=index,
                           BakeEndsAtWall=time.time() + self.clock.real_seconds(plan.bake_seconds))
                reason = await self._bake(plan.bake_seconds)
                if reason:
                    await self._roll_back(reason)
                    return False
        if plan.termination_wait > 0:
            self._save(TERMINATING, f"All traffic on the new fleet; the old fleet is terminated in "
                                    f"{plan.termination_wait:g} s")
            await self._sleep(plan.termination_wait)
        else:
            self._save(TERMINATING, "All traffic on the new fleet; terminating the old fleet")
        await self.target.finish()
        return True

    def _describe_step(self, index: int, value: float) -> str:
        if self.plan.kind == "Rolling":
            return f"Rolling batch {index + 1} of {len(self.plan.steps)}: {value:g} new instance(s) in service"
        return (f"Step {index + 1} of {len(self.plan.steps)} ({self.plan.routing}): the new fleet takes "
                f"{value * 100:g}% of the traffic")

    def _tripped(self) -> str | None:
        """Why the deployment must roll back now, or None."""
        since = self.state.get("StartedAt")
        in_alarm = [name for name in self.plan.alarms if self.alarm_state(name, since) == "ALARM"]
        if in_alarm:
            return (f"Rolled back: the CloudWatch alarm{'s' if len(in_alarm) > 1 else ''} {', '.join(in_alarm)} "
                    f"went into ALARM during the deployment (AutoRollbackConfiguration).")
        deadline = self.state.get("Deadline")
        if deadline and self.clock.now() > deadline:
            return (f"Rolled back: the deployment did not finish within MaximumExecutionTimeoutInSeconds "
                    f"({self.plan.timeout:g} s).")
        return None

    async def _bake(self, seconds: float) -> str | None:
        end = self.clock.now() + seconds
        while self.clock.now() < end:
            reason = self._tripped()
            if reason:
                return reason
            await asyncio.sleep(min(POLL_SECONDS, max(0.0, self.clock.real_seconds(end - self.clock.now()))))
        return self._tripped()

    async def _sleep(self, seconds: float):
        await asyncio.sleep(self.clock.real_seconds(seconds))

    async def _roll_back(self, reason: str):
        log.warning("%s", reason)
        self._save(ROLLING_BACK, reason)
        await self.target.roll_back(reason, self.plan.rollback_batch)
