"""CloudWatch metric alarms: the state machine, evaluated on the monitoring clock, and their actions.

Every ``Period`` an alarm takes the last ``EvaluationPeriods`` periods of its metric's statistic,
fills periods with no data as ``TreatMissingData`` says, and goes ``ALARM`` when at least
``DatapointsToAlarm`` of them breach the threshold, ``OK`` when there is data and not enough breach,
and ``INSUFFICIENT_DATA`` when there is none. Actions run on a change of state; an Application
Auto Scaling action (a scaling policy's ARN) runs again every period the alarm stays in ALARM, as
AWS re-invokes scaling policies. Alarms are durable records; their evaluation times are not.
"""
from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timezone
from typing import Callable

from ...clock import Clock
from ...texts import text
from ..store import Store
from .metrics import MetricStore, dimensions_of

log = logging.getLogger("smemu.cloudwatch")
ALARM_KIND = "cloudwatch-alarm"
OPERATORS = {
    "GreaterThanOrEqualToThreshold": (lambda value, threshold: value >= threshold, "greater than or equal to"),
    "GreaterThanThreshold": (lambda value, threshold: value > threshold, "greater than"),
    "LessThanThreshold": (lambda value, threshold: value < threshold, "less than"),
    "LessThanOrEqualToThreshold": (lambda value, threshold: value <= threshold, "less than or equal to"),
}
SCALING_ACTION = ":autoscaling:"  # arn:aws:autoscaling:<region>:<account>:scalingPolicy:…
EXTRA_PERIODS = 2  # the evaluation range: EvaluationPeriods and two more


def decide(values: list, periods: int, needed: int, breaches, treat: str, current: str) -> tuple[str, list]:
    """An alarm's next state from its evaluation range (oldest first, None = missing), and the datapoints
    it judged, as CloudWatch's documented rules have it:

    - with at least ``periods`` real datapoints in the range, the most recent ``periods`` of them are
      judged and TreatMissingData plays no part;
    - with fewer, the last ``periods`` periods are judged, missing ones filled as ``treat`` says:
      ``breaching`` / ``notBreaching`` fill them; ``missing`` judges the real ones (none at all is
      INSUFFICIENT_DATA), and goes ALARM early when the oldest breaching datapoint is at least
      ``needed`` periods old and nothing newer is below the threshold; ``ignore`` keeps the current
      state while the newest period has no data.
    """
    real = [v for v in values if v is not None]
    if len(real) >= periods:
        judged = real[-periods:]
        return ("ALARM" if sum(map(breaches, judged)) >= needed else "OK"), judged
    window = values[-periods:]
    if treat in ("breaching", "notBreaching"):
        fill = treat == "breaching"
        count = sum(fill if v is None else breaches(v) for v in window)
        return ("ALARM" if count >= needed else "OK"), window
    if not real:
        return ("INSUFFICIENT_DATA" if treat == "missing" else current), window
    if treat == "ignore" and values[-1] is None:
        return current, window
    if sum(map(breaches, real)) >= needed:
        return "ALARM", real
    ages = [age for age, v in enumerate(reversed(values), start=1) if v is not None and breaches(v)]
    if ages and max(ages) >= needed and all(v is None or breaches(v) for v in values[len(values) - max(ages):]):
        return "ALARM", real
    return "OK", real


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class Alarms:
    """The alarms of one emulator: stored, evaluated each period, acting on state changes.

    ``on_action(arn, alarm, values)`` is called for Application Auto Scaling actions with the
    alarm's record and the evaluated datapoint values (newest last)."""

    def __init__(self, store: Store, metrics: MetricStore, clock: Clock, account: str):
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.account = account
        self.on_action: Callable[[str, dict, list[float]], None] | None = None
        self.next_evaluation: dict[str, float] = {}
        # Evaluation runs many times a second at a large time scale: alarms are read from memory,
        # written through to the store.
        self.cache: dict[str, dict] = {alarm["AlarmName"]: alarm for alarm in store.all(ALARM_KIND)}

    def arn(self, region: str, name: str) -> str:
        return f"arn:aws:cloudwatch:{region}:{self.account}:alarm:{name}"

    # -- records ---------------------------------------------------------------------------------
    def put(self, alarm: dict, region: str, tags: list[dict] | None = None) -> dict:
        """Create or replace an alarm (an update keeps its state, as CloudWatch does). Tags are stored with a new
        alarm in one transaction; on an update CloudWatch ignores them (PutMetricAlarm's documentation), so do we."""
        now = self.clock.now()
        name = alarm["AlarmName"]
        existing = self.cache.get(name)
        record = {"ActionsEnabled": True, "OKActions": [], "AlarmActions": [], "InsufficientDataActions": [],
                  "Dimensions": [], "TreatMissingData": "missing", **alarm,
                  "AlarmArn": self.arn(region, name), "AlarmConfigurationUpdatedTimestamp": now}
        record.setdefault("DatapointsToAlarm", record["EvaluationPeriods"])
        if existing is None:
            record.update(StateValue="INSUFFICIENT_DATA", StateReason=text("cw-initial-reason"),
                          StateUpdatedTimestamp=now, StateTransitionedTimestamp=now)
            self.store.insert(ALARM_KIND, name, record["AlarmArn"], record, "INSUFFICIENT_DATA", now, tags)
        else:
            for key in ("StateValue", "StateReason", "StateReasonData", "StateUpdatedTimestamp",
                        "StateTransitionedTimestamp"):
                if key in existing:
                    record[key] = existing[key]
            self.store.put(ALARM_KIND, name, record, record["StateValue"], now)
        self.cache[name] = record
        self.next_evaluation.pop(name, None)
        return record

    def get(self, name: str) -> dict | None:
        return self.cache.get(name)

    def state(self, name: str, since: float | None = None) -> str | None:
        """The alarm's StateValue, or None when there is no such alarm. With ``since`` (monitoring clock):
        "ALARM" also when it went into ALARM at or after then, even if an evaluation has moved it on since
        (a deployment polling its alarms must not miss a short ALARM)."""
        alarm = self.cache.get(name)
        if alarm is None:
            return None
        if since is not None and alarm.get("_entered_alarm", -1.0) >= since:
            return "ALARM"
        return alarm["StateValue"]

    def all(self) -> list[dict]:
        return list(self.cache.values())

    def delete(self, name: str):
        record = self.cache.pop(name, None)
        if record is not None:
            self.store.delete(ALARM_KIND, name, record["AlarmArn"])
        self.next_evaluation.pop(name, None)

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate_due(self):
        now = self.clock.now()
        for alarm in self.all():
            name, period = alarm["AlarmName"], alarm["Period"]
            due = self.next_evaluation.get(name)
            if due is None:  # the first evaluation: at the end of the current period
                self.next_evaluation[name] = (math.floor(now / period) + 1) * period
                continue
            if now < due:
                continue
            self.next_evaluation[name] = (math.floor(now / period) + 1) * period
            try:
                self.evaluate(alarm, math.floor(now / period) * period)
            except Exception:
                log.exception("evaluating alarm %s failed", name)

    def next_due(self) -> float | None:
        """When (on the monitoring clock) the next evaluation is due, so the loop can wake for it."""
        return min(self.next_evaluation.values(), default=None)

    def values(self, alarm: dict, end: float) -> list[float | None]:
        """The statistic of each period of the evaluation range before ``end``, oldest first (None: no data).

        Like CloudWatch, the range holds more periods than EvaluationPeriods, so that an alarm with a
        few missing datapoints still has real ones to judge."""
        period, count = alarm["Period"], alarm["EvaluationPeriods"] + EXTRA_PERIODS
        series = self.metrics.get(alarm["Namespace"], alarm["MetricName"], dimensions_of(alarm.get("Dimensions")))
        starts = [end - period * (count - index) for index in range(count)]
        if series is None:
            return [None] * count
        found = dict(self.metrics.buckets(series, starts[0], end, period))
        return [found[s].value(alarm["Statistic"]) if s in found else None for s in starts]

    def evaluate(self, alarm: dict, end: float):
        values = self.values(alarm, end)
        compare, words = OPERATORS[alarm["ComparisonOperator"]]
        threshold = alarm["Threshold"]
        state, judged = decide(values, alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"],
                               lambda value: compare(value, threshold), alarm.get("TreatMissingData", "missing"),
                               alarm["StateValue"])
        shown = [v for v in judged if v is not None]
        stamp = datetime.fromtimestamp(end - alarm["Period"], timezone.utc).strftime("%d/%m/%y %H:%M:%S")
        if state == "INSUFFICIENT_DATA" or not shown:
            count = alarm["EvaluationPeriods"]
            reason = f"Insufficient Data: {count} datapoint{'s were' if count > 1 else ' was'} unknown."
        else:
            points = ", ".join(f"{v!r} ({stamp})" for v in shown[-alarm["DatapointsToAlarm"]:])
            kind = "was" if state == "ALARM" else "was not"
            reason = (f"Threshold Crossed: {len(shown)} datapoint{'s' if len(shown) != 1 else ''} [{points}] {kind} "
                      f"{words} the threshold ({threshold!r}).")
        data = {"version": "1.0", "queryDate": _iso(self.clock.now()), "startDate": _iso(end - alarm["Period"]),
                "statistic": alarm["Statistic"], "period": alarm["Period"], "recentDatapoints": shown,
                "threshold": threshold}
        self.transition(alarm, state, reason, json.dumps(data), values=shown)

    def transition(self, alarm: dict, state: str, reason: str, reason_data: str | None = None,
                   values: list[float] | None = None):
        """Record the (possibly unchanged) state; run actions on a change, and scaling actions while in ALARM."""
        now = self.clock.now()
        changed = state != alarm["StateValue"]
        if changed or reason != alarm.get("StateReason"):
            alarm.update(StateValue=state, StateReason=reason, StateUpdatedTimestamp=now)
            if reason_data is not None:
                alarm["StateReasonData"] = reason_data
            if changed:
                alarm["StateTransitionedTimestamp"] = now
                if state == "ALARM":
                    alarm["_entered_alarm"] = now
                log.info("alarm %s is %s: %s", alarm["AlarmName"], state, reason)
            self.store.put(ALARM_KIND, alarm["AlarmName"], alarm, state, now)
        if not alarm.get("ActionsEnabled", True):
            return
        actions = {"ALARM": "AlarmActions", "OK": "OKActions", "INSUFFICIENT_DATA": "InsufficientDataActions"}[state]
        for arn in alarm.get(actions) or []:
            scaling = SCALING_ACTION in arn
            if not (changed or (scaling and state == "ALARM")):
                continue
            if scaling and self.on_action is not None:
                try:
                    self.on_action(arn, alarm, values or [])
                except Exception:
                    log.exception("the action %s of alarm %s failed", arn, alarm["AlarmName"])
            elif changed:
                log.info("alarm %s: action %s is not run by smemu (only Application Auto Scaling policies are)",
                         alarm["AlarmName"], arn)

