"""The CloudWatch operations smemu serves: metrics (Put, GetMetricStatistics, GetMetricData,
ListMetrics) and metric alarms (PutMetricAlarm, DescribeAlarms, DeleteAlarms, SetAlarmState).

Errors carry CloudWatch's query error codes (InvalidParameterValue, InvalidParameterCombination,
MissingParameter, ResourceNotFound, InvalidFormat, InvalidNextToken).
"""
from __future__ import annotations

import json

from ...clock import Clock
from ...texts import text
from ..errors import ServiceError
from ..operations import decode_token, encode_token, epoch
from .alarms import OPERATORS, Alarms
from .metrics import STATISTICS, MetricStore, dimensions_of

MAX_DATAPOINTS = 1440
HIGH_RESOLUTION_PERIODS = (1, 5, 10, 20, 30)


def invalid(message: str, code: str = "InvalidParameterValue", status: int = 400) -> ServiceError:
    return ServiceError(code, message, status)


class CloudWatchOperations:
    def __init__(self, metrics: MetricStore, alarms: Alarms, clock: Clock):
        self.metrics = metrics
        self.alarms = alarms
        self.clock = clock

    # -- metrics ---------------------------------------------------------------------------------
    def put_metric_data(self, req: dict, region: str) -> dict:
        namespace = req["Namespace"]
        if namespace.startswith("AWS/"):
            raise invalid(f"The value {namespace} for parameter Namespace is invalid: namespaces starting with AWS/ "
                          "are reserved for AWS.")
        if not req.get("MetricData"):
            raise invalid("The parameter MetricData is required.", "MissingParameter")
        now = self.clock.now()
        for datum in req["MetricData"]:
            dims = dimensions_of(datum.get("Dimensions"))
            moment = epoch(datum.get("Timestamp")) or now
            options = dict(unit=datum.get("Unit"), high_resolution=datum.get("StorageResolution") == 1)
            if "StatisticValues" in datum:
                values = datum["StatisticValues"]
                self.metrics.put(namespace, datum["MetricName"], dims, moment, stats=(
                    values["SampleCount"], values["Sum"], values["Minimum"], values["Maximum"]), **options)
            elif datum.get("Values"):
                counts = datum.get("Counts") or [1.0] * len(datum["Values"])
                if len(counts) != len(datum["Values"]):
                    raise invalid("The parameters Values and Counts must be of the same size.",
                                  "InvalidParameterCombination")
                for value, count in zip(datum["Values"], counts):
                    self.metrics.put(namespace, datum["MetricName"], dims, moment,
                                     stats=(count, value * count, value, value), **options)
            elif "Value" in datum:
                self.metrics.put(namespace, datum["MetricName"], dims, moment, datum["Value"], **options)
            else:
                raise invalid(f"The parameter MetricData.member.Value is required for {datum['MetricName']}.",
                              "MissingParameter")
        return {}

    def _window(self, req: dict) -> tuple[float, float]:
        start, end = epoch(req["StartTime"]), epoch(req["EndTime"])
        if start >= end:
            raise invalid(text("cw-start-after-end"))
        return start, end

    @staticmethod
    def _check_period(period: int):
        if period not in HIGH_RESOLUTION_PERIODS and period % 60:
            raise invalid("The parameter Period must be 1, 5, 10, 20, 30, or a multiple of 60.")

    def get_metric_statistics(self, req: dict, region: str) -> dict:
        start, end = self._window(req)
        period = req["Period"]
        self._check_period(period)
        if req.get("ExtendedStatistics"):
            raise invalid("smemu does not keep percentiles: ask for Statistics (SampleCount, Average, Sum, Minimum, "
                          "Maximum).")
        statistics = req.get("Statistics")
        if not statistics:
            raise invalid("The parameter Statistics or ExtendedStatistics is required.", "MissingParameter")
        count = -(-(end - start) // period)
        if count > MAX_DATAPOINTS:
            raise invalid(text("cw-too-many-points", count=int(count)), "InvalidParameterCombination")
        series = self.metrics.get(req["Namespace"], req["MetricName"], dimensions_of(req.get("Dimensions")))
        datapoints = []
        if series is not None and (not req.get("Unit") or req["Unit"] == (series.unit or "None")):
            for moment, stat in self.metrics.buckets(series, start, end, period):
                point = {"Timestamp": moment, "Unit": series.unit or "None"}
                point.update({name: stat.value(name) for name in statistics})
                datapoints.append(point)
        return {"Label": req["MetricName"], "Datapoints": datapoints}

    def get_metric_data(self, req: dict, region: str) -> dict:
        start, end = self._window(req)
        results = []
        for query in req["MetricDataQueries"]:
            if query.get("Expression"):
                raise invalid(f"smemu does not evaluate metric math: query {query['Id']} has an Expression.")
            stat = query.get("MetricStat")
            if not stat:
                raise invalid(f"The query {query['Id']} needs a MetricStat.", "MissingParameter")
            if stat["Stat"] not in STATISTICS:
                raise invalid(f"smemu computes the statistics {', '.join(STATISTICS)}, not {stat['Stat']}.")
            self._check_period(stat["Period"])
            metric = stat["Metric"]
            series = self.metrics.get(metric.get("Namespace"), metric.get("MetricName"),
                                      dimensions_of(metric.get("Dimensions")))
            points = self.metrics.buckets(series, start, end, stat["Period"]) if series is not None else []
            if req.get("ScanBy", "TimestampDescending") == "TimestampDescending":
                points.reverse()
            points = points[: req.get("MaxDatapoints", 100_800)]
            if query.get("ReturnData", True):
                results.append({"Id": query["Id"], "Label": query.get("Label") or metric.get("MetricName"),
                                "Timestamps": [moment for moment, _ in points],
                                "Values": [value.value(stat["Stat"]) for _, value in points],
                                "StatusCode": "Complete"})
        return {"MetricDataResults": results, "Messages": []}

    def list_metrics(self, req: dict, region: str) -> dict:
        found = sorted(self.metrics.matching(req.get("Namespace"), req.get("MetricName"), req.get("Dimensions")),
                       key=lambda s: (s.namespace, s.name, s.dimensions))
        if req.get("RecentlyActive") == "PT3H":
            found = [s for s in found if s.last >= self.clock.now() - 3 * 3600]
        offset = self._offset(req.get("NextToken"))
        page = found[offset: offset + 500]
        result = {"Metrics": [{"Namespace": s.namespace, "MetricName": s.name,
                               "Dimensions": [{"Name": n, "Value": v} for n, v in s.dimensions]} for s in page]}
        if offset + 500 < len(found):
            result["NextToken"] = encode_token(offset + 500)
        return result

    @staticmethod
    def _offset(token: str | None) -> int:
        try:
            return decode_token(token)
        except ServiceError:
            raise invalid("The specified NextToken is not valid.", "InvalidNextToken") from None

    # -- alarms ----------------------------------------------------------------------------------
    def put_metric_alarm(self, req: dict, region: str) -> dict:
        if req.get("Metrics") or req.get("ExtendedStatistic") or req.get("ThresholdMetricId"):
            raise invalid("smemu evaluates alarms on one metric and a Statistic (no metric math, no percentiles, no "
                          "anomaly detection).")
        for member in ("MetricName", "Namespace", "Statistic", "Period", "Threshold", "ComparisonOperator"):
            if req.get(member) is None:
                raise invalid(f"The parameter {member} is required.", "MissingParameter")
        if req["ComparisonOperator"] not in OPERATORS:
            raise invalid(f"smemu evaluates the comparison operators {', '.join(OPERATORS)}; "
                          f"{req['ComparisonOperator']} needs anomaly detection.")
        self._check_period(req["Period"])
        points = req.get("DatapointsToAlarm", req["EvaluationPeriods"])
        if points > req["EvaluationPeriods"]:
            raise invalid("DatapointsToAlarm must be less than or equal to EvaluationPeriods.")
        if req["Period"] * req["EvaluationPeriods"] > 86400:
            raise invalid("The evaluation period (Period × EvaluationPeriods) cannot exceed one day.")
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            if len(req.get(key) or []) > 5:
                raise invalid(f"The parameter {key} may hold at most 5 actions.")
        alarm = {k: v for k, v in req.items() if k != "Tags"}
        self.alarms.put(alarm, region, req.get("Tags"))
        return {}

    # -- tags ------------------------------------------------------------------------------------
    def _tagged(self, arn: str) -> str:
        if not self.alarms.store.exists_arn(arn):
            raise invalid(f"{arn} not found", "ResourceNotFoundException", 404)
        return arn

    def list_tags_for_resource(self, req: dict, region: str) -> dict:
        return {"Tags": self.alarms.store.tags(self._tagged(req["ResourceARN"]))}

    def tag_resource(self, req: dict, region: str) -> dict:
        self.alarms.store.add_tags(self._tagged(req["ResourceARN"]), req["Tags"])
        return {}

    def untag_resource(self, req: dict, region: str) -> dict:
        self.alarms.store.delete_tags(self._tagged(req["ResourceARN"]), req["TagKeys"])
        return {}

    def describe_alarms(self, req: dict, region: str) -> dict:
        alarms = sorted(self.alarms.all(), key=lambda a: a["AlarmName"])
        if req.get("AlarmNames"):
            names = set(req["AlarmNames"])
            alarms = [a for a in alarms if a["AlarmName"] in names]
        if req.get("AlarmNamePrefix"):
            alarms = [a for a in alarms if a["AlarmName"].startswith(req["AlarmNamePrefix"])]
        if req.get("StateValue"):
            alarms = [a for a in alarms if a["StateValue"] == req["StateValue"]]
        if req.get("ActionPrefix"):
            alarms = [a for a in alarms if any(action.startswith(req["ActionPrefix"])
                                               for action in a.get("AlarmActions") or [])]
        if req.get("AlarmTypes") and "MetricAlarm" not in req["AlarmTypes"]:
            alarms = []
        offset, limit = self._offset(req.get("NextToken")), req.get("MaxRecords", 50)
        result = {"MetricAlarms": alarms[offset: offset + limit], "CompositeAlarms": []}
        if offset + limit < len(alarms):
            result["NextToken"] = encode_token(offset + limit)
        return result

    def delete_alarms(self, req: dict, region: str) -> dict:
        for name in req["AlarmNames"]:
            self.alarms.delete(name)
        return {}

    def set_alarm_state(self, req: dict, region: str) -> dict:
        alarm = self.alarms.get(req["AlarmName"])
        if alarm is None:
            raise invalid(f"Alarm {req['AlarmName']} not found", "ResourceNotFound", 404)
        if req.get("StateReasonData") is not None:
            try:
                json.loads(req["StateReasonData"])
            except ValueError:
                raise invalid("The StateReasonData is not valid JSON.", "InvalidFormat") from None
        self.alarms.transition(alarm, req["StateValue"], req["StateReason"], req.get("StateReasonData"))
        return {}
