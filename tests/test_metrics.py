"""GET /metrics in Prometheus text format, and the per-request access log."""
from __future__ import annotations

import re

import httpx
import pytest

from emulator.testing import EmulatorProcess

from .helpers import delete_endpoint, deploy


def scrape(emulator) -> dict[str, float]:
    text = httpx.get(f"{emulator.url}/metrics").text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


@pytest.fixture(scope="module")
def logged_emulator(tmp_path_factory):
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-access") / "state", {"SMEMU_ACCESS_LOG_LEVEL": "info"}).start()
    yield server
    server.stop()


def test_invocation_counters_and_latency_histograms(logged_emulator, xgboost_archive):
    sagemaker, runtime = logged_emulator.client("sagemaker"), logged_emulator.client("sagemaker-runtime")
    deploy(sagemaker, "metered", xgboost_archive)
    for _ in range(3):
        runtime.invoke_endpoint(EndpointName="metered", Body=b"0,0,1", ContentType="text/csv")
    with pytest.raises(runtime.exceptions.ModelError):
        runtime.invoke_endpoint(EndpointName="metered", Body=b"0,0,1", ContentType="image/png")  # 415 from the model
    samples = scrape(logged_emulator)
    labels = '{endpoint="metered",variant="AllTraffic",component=""}'
    assert samples[f"smemu_invocations_total{labels}"] == 4
    assert samples[f"smemu_invocation_4xx_errors_total{labels}"] == 1
    assert samples[f"smemu_invocation_5xx_errors_total{labels}"] == 0
    assert samples[f"smemu_model_latency_microseconds_count{labels}"] == 4
    assert samples[f"smemu_model_latency_microseconds_sum{labels}"] > 0
    inf = '{endpoint="metered",variant="AllTraffic",component="",le="+Inf"}'
    assert samples[f"smemu_overhead_latency_microseconds_bucket{inf}"] == 4
    assert samples[f"smemu_overhead_latency_microseconds_sum{labels}"] > 0  # smemu's own time is never nothing
    assert samples['smemu_copies{endpoint="metered",variant="AllTraffic",component="",state="current"}'] == 1
    assert samples['smemu_copies{endpoint="metered",variant="AllTraffic",component="",state="desired"}'] == 1
    assert any(name.startswith("smemu_copy_resident_memory_bytes") and value > 0 for name, value in samples.items())
    lines = [line for line in logged_emulator.log().splitlines() if "smemu.access" in line]
    assert len(lines) == 4
    assert re.search(r"endpoint=metered variant=AllTraffic component=- copy=\w+ status=415 model_latency_us=\d+ "
                     r"overhead_latency_us=\d+", "\n".join(lines))
    delete_endpoint(sagemaker, "metered")


def test_component_no_capacity_failures_are_exported(logged_emulator, xgboost_archive):
    sagemaker, runtime = logged_emulator.client("sagemaker"), logged_emulator.client("sagemaker-runtime")
    sagemaker.create_model(ModelName="m0", PrimaryContainer={"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                                                                      "sagemaker-xgboost:1.7-1",
                                                             "ModelDataUrl": str(xgboost_archive)})
    sagemaker.create_endpoint_config(EndpointConfigName="zero", ProductionVariants=[
        {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName="zero", EndpointConfigName="zero")
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="zero", WaiterConfig={"Delay": 0.2})
    sagemaker.create_inference_component(InferenceComponentName="zero-c", EndpointName="zero", VariantName="AllTraffic",
                                         Specification={"ModelName": "m0", "ComputeResourceRequirements": {
                                             "MinMemoryRequiredInMb": 256}}, RuntimeConfig={"CopyCount": 0})
    for _ in range(2):
        with pytest.raises(runtime.exceptions.ValidationError):
            runtime.invoke_endpoint(EndpointName="zero", InferenceComponentName="zero-c", Body=b"0,0,1", ContentType="text/csv")
    samples = scrape(logged_emulator)
    labels = '{endpoint="zero",variant="AllTraffic",component="zero-c"}'
    assert samples[f"smemu_no_capacity_invocation_failures_total{labels}"] == 2
    assert samples['smemu_copies{endpoint="zero",variant="AllTraffic",component="zero-c",state="desired"}'] == 0
    delete_endpoint(sagemaker, "zero")


def test_requests_recorded_soon_are_counted_at_the_next_read_or_by_the_bound():
    """The data plane's callback form counts a request after its answer is written (record_soon): a read of the
    counters sees it at once, and it is counted within COUNT_WITHIN_S when nothing reads."""
    import asyncio

    from emulator.router.metrics import COUNT_WITHIN_S, Metrics

    async def main():
        metrics = Metrics()
        metrics.record_soon("e", "AllTraffic", None, "c1", 200, 700.0, 800.0, None)
        assert metrics.totals("e")[0]["Invocations"] == 1
        metrics.record_soon("e", "AllTraffic", None, "c1", 200, 700.0, 800.0, None)
        assert metrics.series[("e", "AllTraffic", "")].invocations == 1
        await asyncio.sleep(COUNT_WITHIN_S + 0.05)
        series = metrics.series[("e", "AllTraffic", "")]
        assert series.invocations == 2 and series.model_latency.count == 2 and series.overhead_latency.total == 200.0

    asyncio.run(main())
