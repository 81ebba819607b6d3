"""The smemu command line against a real emulator: deploy, invoke, logs, delete, images."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from emulator.config import DEFAULT_ROLE

from . import models
from .helpers import ROOT, metadata_standin, wait_in_service


def smemu(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "emulator", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def test_deploy_invoke_logs_delete(emulator, sagemaker, tmp_path):
    raw = models.xgboost_model_dir(tmp_path / "raw")
    deployed = smemu("deploy", "--framework", "xgboost", "--name", "cli-xgb", raw / "xgboost-model", "--url", emulator.url)
    assert deployed.returncode == 0, deployed.stderr
    assert "packaging 1 artifact(s)" in deployed.stderr and "endpoint cli-xgb: InService" in deployed.stderr
    assert "smemu invoke cli-xgb --body @FILE --content-type text/csv" in deployed.stdout
    # The role the console pre-fills too, said on both surfaces: their models share an endpoint.
    assert sagemaker.describe_model(ModelName="cli-xgb")["ExecutionRoleArn"] == DEFAULT_ROLE
    assert f"execution role {DEFAULT_ROLE}" in deployed.stderr
    (tmp_path / "rows.csv").write_text("0,0,1\n1,0,0")
    answer = smemu("invoke", "cli-xgb", "--body", f"@{tmp_path / 'rows.csv'}", "--content-type", "text/csv",
                   "--url", emulator.url)
    assert answer.returncode == 0 and answer.stdout == "0.25\n0.25\n"
    refused = smemu("invoke", "cli-xgb", "--body", "0,0,1", "--content-type", "image/png", "--url", emulator.url)
    assert refused.returncode == 1 and refused.stderr.startswith("smemu invoke: ModelError: Received client error (415)")
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "smemu logs cli-xgb" in refused.stderr and "console.aws.amazon.com" not in refused.stderr
    logs = smemu("logs", "cli-xgb", "--url", emulator.url)  # read through the server, whatever its --state-dir
    assert "smemu-serving: ready on port" in logs.stdout and logs.stdout.startswith(
        "==> /aws/sagemaker/Endpoints/cli-xgb AllTraffic/i-")
    deleted = smemu("delete", "cli-xgb", "--all", "--url", emulator.url)
    assert deleted.returncode == 0 and deleted.stdout == "deleted endpoint cli-xgb, endpoint config cli-xgb, model cli-xgb\n"
    assert sagemaker.list_models(NameContains="cli-xgb")["Models"] == []
    missing = smemu("delete", "cli-xgb", "--url", emulator.url)
    assert missing.returncode == 1 and 'Could not find endpoint "arn:aws:sagemaker' in missing.stderr


def test_deploy_a_component_and_follow_its_logs(emulator, sagemaker, tmp_path):
    sagemaker.create_endpoint_config(EndpointConfigName="cli-shared", ProductionVariants=[
        {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName="cli-shared", EndpointConfigName="cli-shared")
    wait_in_service(sagemaker, "cli-shared")
    archive = models.tar_directory(models.pytorch_model_dir(tmp_path / "raw"), tmp_path / "doubler.tar.gz")
    deployed = smemu("deploy", "--framework", "pytorch", "--name", "cli-doubler", archive, "--endpoint", "cli-shared",
                     "--cores", "1", "--memory", "512", "--url", emulator.url)
    assert deployed.returncode == 0, deployed.stderr
    assert "component cli-doubler: InService, 1/1 copies" in deployed.stderr
    answer = smemu("invoke", "cli-shared", "--component", "cli-doubler", "--body", "[2.0]", "--content-type",
                   "application/json", "--url", emulator.url)
    assert json.loads(answer.stdout) == [4.0]
    follower = subprocess.Popen([sys.executable, "-m", "emulator", "logs", "cli-shared", "--component", "cli-doubler",
                                 "-f", "--url", emulator.url], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        end = time.monotonic() + 30
        seen = ""
        while "ready on port" not in seen and time.monotonic() < end:
            seen += follower.stdout.readline()
        assert "ready on port" in seen
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait(10)
    # --all deletes what it says, the component's model included.
    deleted = smemu("delete", "cli-shared", "--all", "--url", emulator.url)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout == "deleted endpoint cli-shared, endpoint config cli-shared, model cli-doubler\n"
    assert not sagemaker.list_models(NameContains="cli-doubler")["Models"]


def test_status_is_ps_and_help_has_examples(emulator):
    status = smemu("status", "--url", emulator.url)
    assert status.returncode == 0 and status.stdout.startswith("runtime: process")
    assert "Example: smemu invoke" in smemu("invoke", "--help").stdout
    unreachable = smemu("ps", "--url", "http://127.0.0.1:9")
    assert unreachable.returncode == 1 and "cannot reach the emulator" in unreachable.stderr


def one_line_error(result, command: str) -> str:
    """A failed command ends with one line saying what went wrong (and at most one line of what to do)."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    errors = [i for i, line in enumerate(lines)
              if line.startswith(f"smemu {command}: ") and not line.startswith(f"smemu {command}: warning:")]
    assert len(errors) == 1, result.stderr
    assert len(lines) - errors[0] <= 2 and all(line.startswith("  ") for line in lines[errors[0] + 1:]), result.stderr
    return result.stderr


UNREACHABLE = "http://127.0.0.1:9"


def test_every_command_reports_an_unreachable_server_in_one_line(tmp_path):
    artifact = models.xgboost_model_dir(tmp_path / "raw") / "xgboost-model"
    for command, args in (("ps", []), ("status", []), ("invoke", ["e", "--body", "x"]), ("delete", ["e"]),
                          ("deploy", ["--framework", "xgboost", "--name", "n", artifact])):
        result = smemu(command, *args, "--url", UNREACHABLE)
        text = one_line_error(result, command)
        assert "cannot reach the emulator at http://127.0.0.1:9" in text and "make run" in text


def test_commands_never_ask_an_instance_metadata_service_for_credentials(emulator, tmp_path):
    """With no AWS credentials in the environment, boto3's chain would end at the EC2 metadata service
    (169.254.169.254); smemu's commands stop before it."""
    import os

    with metadata_standin() as (url, asked):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_EC2_METADATA_SERVICE_ENDPOINT=url, AWS_CONFIG_FILE=str(tmp_path / "none"),
                   AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
        for args in (["ps"], ["invoke", "no-such-endpoint", "--body", "1"]):
            subprocess.run([sys.executable, "-m", "emulator", *args, "--url", emulator.url], env=env,
                           capture_output=True, timeout=60)
    assert asked == []


def test_user_errors_are_one_line_for_each_command(emulator, tmp_path):
    missing_body = smemu("invoke", "e", "--body", "@no-such-file.csv", "--url", emulator.url)
    assert "cannot read the body file no-such-file.csv: No such file or directory" in one_line_error(missing_body, "invoke")
    not_found = smemu("invoke", "no-such-endpoint", "--body", "1", "--content-type", "text/csv", "--url", emulator.url)
    assert "ValidationError" in one_line_error(not_found, "invoke")
    assert "not a file" in one_line_error(smemu("deploy", "--framework", "xgboost", "--name", "n", tmp_path / "absent",
                                                "--url", emulator.url), "deploy")
    bad_env = smemu("deploy", "--framework", "xgboost", "--name", "n", tmp_path, "--env", "NOEQUALS", "--url", emulator.url)
    assert "--env NOEQUALS is not KEY=VALUE" in one_line_error(bad_env, "deploy")
    assert "not a file" in one_line_error(smemu("package", "--framework", "pytorch", tmp_path / "absent", "-o",
                                                tmp_path / "out.tar.gz"), "package")
    assert "no logs for endpoint nope" in one_line_error(smemu("logs", "nope", "--url", emulator.url), "logs")
    assert "Could not find endpoint" in one_line_error(smemu("delete", "nope", "--url", emulator.url), "delete")
    assert one_line_error(smemu("serve", "--account-id", "12", "--port", "1"), "serve").count("12 digits") == 1


def test_docker_runtime_without_the_docker_sdk_says_how_to_install_it():
    hidden = ("import sys; sys.modules['docker'] = None; from emulator.cli import main; "
              "sys.exit(main(['serve', '--runtime', 'docker', '--port', '1']))")
    result = subprocess.run([sys.executable, "-c", hidden], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode != 0
    assert "the Docker runtime needs the Docker SDK for Python" in result.stderr and ".[docker]" in result.stderr


def test_invoke_warns_when_a_csv_body_has_no_content_type(emulator):
    result = smemu("invoke", "no-such-endpoint", "--body", "0.5,1,2", "--url", emulator.url)
    assert "warning: the body looks like CSV but no --content-type was given" in result.stderr
    quiet = smemu("invoke", "no-such-endpoint", "--body", "0.5,1,2", "--content-type", "text/csv", "--url", emulator.url)
    assert "warning" not in quiet.stderr
    assert "warning" not in smemu("invoke", "no-such-endpoint", "--body", '{"a": 1}', "--url", emulator.url).stderr


def test_a_failed_deploy_cleans_up_and_replace_redeploys(emulator, sagemaker, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "xgboost-model").write_text("not a booster")
    # A directory is used as it is (no packaging checks), so the copy fails to load the model.
    failed = smemu("deploy", "--framework", "xgboost", "--name", "cli-retry", broken, "--url", emulator.url)
    text = one_line_error(failed, "deploy")
    assert "endpoint cli-retry failed" in text
    assert "removed what this deploy created: endpoint cli-retry, endpoint config cli-retry, model cli-retry" in text
    assert sagemaker.list_models(NameContains="cli-retry")["Models"] == []
    good = models.xgboost_model_dir(tmp_path / "good")
    assert smemu("deploy", "--framework", "xgboost", "--name", "cli-retry", good, "--url", emulator.url).returncode == 0
    again = smemu("deploy", "--framework", "xgboost", "--name", "cli-retry", good, "--url", emulator.url)
    text = one_line_error(again, "deploy")
    assert "endpoint and endpoint config and model cli-retry exist already" in text and "--replace" in text
    assert "packag" not in again.stdout + again.stderr  # said before packaging anything
    assert sagemaker.describe_endpoint(EndpointName="cli-retry")["EndpointStatus"] == "InService"  # untouched
    replaced = smemu("deploy", "--framework", "xgboost", "--name", "cli-retry", good, "--replace", "--url", emulator.url)
    assert replaced.returncode == 0, replaced.stderr
    assert "replacing: deleted endpoint cli-retry, endpoint config cli-retry, model cli-retry" in replaced.stderr
    assert smemu("delete", "cli-retry", "--all", "--url", emulator.url).returncode == 0


def test_deploys_never_change_an_earlier_models_package(emulator, sagemaker, runtime, tmp_path):
    """Each deploy of raw files gets a package named by its content: a later deploy from the same
    folder leaves the earlier endpoint's model data as it was, across a restart of its copies too."""
    import shutil

    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "xgboost-model").write_bytes((models.xgboost_model_dir(tmp_path / "a", models.xgboost_booster(
        base_score=0.25)) / "xgboost-model").read_bytes())
    first = subprocess.run([sys.executable, "-m", "emulator", "deploy", "--framework", "xgboost", "--name", "pkg-a",
                            "xgboost-model", "--url", emulator.url], cwd=workdir, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    shutil.copy(models.xgboost_model_dir(tmp_path / "b", models.xgboost_booster(base_score=0.75)) / "xgboost-model",
                workdir / "xgboost-model")
    second = subprocess.run([sys.executable, "-m", "emulator", "deploy", "--framework", "xgboost", "--name", "pkg-b",
                             "xgboost-model", "--url", emulator.url], cwd=workdir, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    url_a = sagemaker.describe_model(ModelName="pkg-a")["PrimaryContainer"]["ModelDataUrl"]
    url_b = sagemaker.describe_model(ModelName="pkg-b")["PrimaryContainer"]["ModelDataUrl"]
    assert url_a != url_b and url_a.startswith(str(workdir / ".smemu" / "packages"))
    for name, expected in (("pkg-a", b"0.25\n"), ("pkg-b", b"0.75\n")):
        assert runtime.invoke_endpoint(EndpointName=name, Body=b"1,2,3", ContentType="text/csv")["Body"].read() == expected
    # The second deploy wrote a package of its own: the first model's file is the one it was created with.
    assert models.booster_base_score(url_a) == 0.25 and models.booster_base_score(url_b) == 0.75
    for name in ("pkg-a", "pkg-b"):
        assert smemu("delete", name, "--all", "--url", emulator.url).returncode == 0


def test_ps_shows_failed_endpoints_empty_endpoints_and_components_at_zero(emulator, sagemaker, tmp_path):
    from .helpers import XGBOOST_IMAGE, add_component, component_endpoint, ic_model, wait_component, wait_status

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "xgboost-model").write_text("not a booster")
    sagemaker.create_model(ModelName="ps-broken", PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": str(broken)})
    sagemaker.create_endpoint_config(EndpointConfigName="ps-broken", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "ps-broken", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName="ps-broken", EndpointConfigName="ps-broken")
    reason = wait_status(sagemaker, "ps-broken", ("Failed",))["FailureReason"]
    component_endpoint(sagemaker, "ps-empty", "ml.m5.xlarge", 1)
    ic_model(sagemaker, "ps-zero-model", models.xgboost_model_dir(tmp_path / "zero"))
    add_component(sagemaker, "ps-zero", "ps-empty", "ps-zero-model", copies=0)
    wait_component(sagemaker, "ps-zero")
    table = smemu("ps", "--url", emulator.url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("runtime: process")
    broken_line = next(line for line in lines if line.startswith("ps-broken "))
    assert "Failed" in broken_line and reason[:40] in broken_line
    empty_line = next(line for line in lines if line.startswith("ps-empty ") and "ml.m5.xlarge" in line)
    assert "InService" in empty_line and "0/4" in empty_line  # cores used / capacity
    zero_line = next(line for line in lines if line.startswith("ps-zero "))
    assert "ps-empty" in zero_line and "InService" in zero_line and "0/0" in zero_line
    log = emulator.log()
    assert log.count(f"endpoint ps-broken failed: {reason[:60]}") == 1 and " WARNING " in log
    sagemaker.delete_endpoint(EndpointName="ps-broken")
    sagemaker.delete_endpoint(EndpointName="ps-empty")


SLOW_LOADING = "import time\n\ndef model_fn(model_dir):\n    time.sleep(8)\n"


def deploy_then_interrupt(emulator, tmp_path, name, *extra):
    """`smemu deploy` of a model that takes 8 s to load, interrupted (SIGINT, as Ctrl-C) once it waits."""
    raw = models.xgboost_model_dir(tmp_path / "raw")
    (tmp_path / "inference.py").write_text(SLOW_LOADING)
    process = subprocess.Popen([sys.executable, "-m", "emulator", "deploy", "--framework", "xgboost", "--name", name,
                                raw / "xgboost-model", "--inference-code", tmp_path / "inference.py", "--url",
                                emulator.url, *extra], stderr=subprocess.PIPE, text=True, cwd=ROOT)
    seen = ""
    end = time.monotonic() + 60
    while f"endpoint {name}: Creating" not in seen and time.monotonic() < end:
        seen += process.stderr.readline()
    assert f"endpoint {name}: Creating" in seen, seen
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=60)[1]
    return process.returncode, rest


def test_ctrl_c_during_deploy_says_what_runs_and_how_to_delete_it(emulator, sagemaker, tmp_path):
    code, said = deploy_then_interrupt(emulator, tmp_path, "cli-interrupted")
    assert code == 130
    assert ("interrupted: still there and carrying on: model cli-interrupted, endpoint config cli-interrupted, "
            "endpoint cli-interrupted") in said
    assert f"smemu delete cli-interrupted --all --url {emulator.url}" in said
    assert sagemaker.describe_endpoint(EndpointName="cli-interrupted")["EndpointStatus"] == "Creating"
    deleted = smemu("delete", "cli-interrupted", "--all", "--url", emulator.url)  # the command it printed works
    assert deleted.returncode == 0, deleted.stderr
    assert not sagemaker.list_models(NameContains="cli-interrupted")["Models"]


def test_ctrl_c_with_rollback_deletes_what_the_deploy_created(emulator, sagemaker, tmp_path):
    code, said = deploy_then_interrupt(emulator, tmp_path, "cli-rolled-back", "--rollback-on-interrupt")
    assert code == 130
    assert ("interrupted: removed what this deploy created: endpoint cli-rolled-back, endpoint config "
            "cli-rolled-back, model cli-rolled-back") in said
    assert not sagemaker.list_endpoints(NameContains="cli-rolled-back")["Endpoints"]
    assert not sagemaker.list_endpoint_configs(NameContains="cli-rolled-back")["EndpointConfigs"]
    assert not sagemaker.list_models(NameContains="cli-rolled-back")["Models"]
