"""--iam: users, groups, roles and their policies decide what each signed caller may do, with AWS's texts.

Every request is signed by boto3 against a running server; the root keys set up users and policies in IAM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import boto3
import botocore
import httpx
import pytest
from botocore.exceptions import ClientError

from emulator.testing import EmulatorProcess

from .helpers import XGBOOST_IMAGE, run_users_suite

KEY, SECRET = "AKIASMEMUROOT", "root/secret+value"
ACCOUNT = "123456789012"
MODEL_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = EmulatorProcess(tmp_path_factory.mktemp("smemu-iam") / "state", {"SMEMU_ACCESS_KEYS": f"{KEY}:{SECRET}"},
                              args=["--auth", "sigv4", "--iam"]).start()
    yield process
    process.stop()


def client(server, service, key=KEY, secret=SECRET, token=None):
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token,
                        config=botocore.config.Config(retries={"total_max_attempts": 1}))


def denial(call, **kwargs) -> dict:
    with pytest.raises(ClientError) as failure:
        call(**kwargs)
    return failure.value.response


def policy(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def user(server, name, *statements, managed=()):
    """A user with one inline policy of ``statements`` and the managed policies named; its clients."""
    iam = client(server, "iam")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=policy(*statements))
    for arn in managed:
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return lambda service: client(server, service, key["AccessKeyId"], key["SecretAccessKey"])


MODEL_DATA = {}


@pytest.fixture(autouse=True)
def _model_data(xgboost_archive):
    MODEL_DATA["url"] = f"file://{xgboost_archive}"


def model(name, **extra):
    return {"ModelName": name, "PrimaryContainer": {"Image": XGBOOST_IMAGE, "ModelDataUrl": MODEL_DATA["url"]}, **extra}


def test_implicit_and_explicit_deny_in_awss_words(server):
    alice = user(server, "alice", allow("sagemaker:*Model*"),
                 {"Effect": "Deny", "Action": "sagemaker:DeleteModel", "Resource": f"{MODEL_ARN}/keep-*"})
    sagemaker = alice("sagemaker")
    error = denial(sagemaker.list_endpoints)["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: "
                                "sagemaker:ListEndpoints on resource: * because no identity-based policy allows the "
                                "sagemaker:ListEndpoints action")
    client(server, "sagemaker").create_model(**model("keep-me"))
    error = denial(sagemaker.delete_model, ModelName="keep-me")["Error"]
    assert error["Message"] == (f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: "
                                f"sagemaker:DeleteModel on resource: {MODEL_ARN}/keep-me with an explicit deny in an "
                                "identity-based policy")
    assert sagemaker.describe_model(ModelName="keep-me")["ModelName"] == "keep-me"  # the wildcard allows it
    # Unknown keys are still unknown, in SageMaker's code for it.
    stranger = client(server, "sagemaker", "AKIANOBODY", "nothing")
    assert denial(stranger.list_models)["Error"]["Code"] == "UnrecognizedClientException"


def test_a_create_with_tags_also_needs_add_tags(server):
    """The mission's case: Studio tags what it creates, so a policy allowing the create alone fails."""
    bob = user(server, "bob", allow("sagemaker:CreateModel"))
    sagemaker = bob("sagemaker")
    sagemaker.create_model(**model("untagged"))  # no Tags: CreateModel alone is enough
    error = denial(sagemaker.create_model, **model("tagged", Tags=[{"Key": "team", "Value": "ml"}]))["Error"]
    assert error["Message"] == (f"User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: "
                                f"sagemaker:AddTags on resource: {MODEL_ARN}/tagged because no identity-based policy "
                                "allows the sagemaker:AddTags action")
    assert denial(client(server, "sagemaker").describe_model, ModelName="tagged")  # nothing was created
    client(server, "iam").put_user_policy(UserName="bob", PolicyName="tagging",
                                          PolicyDocument=policy(allow("sagemaker:AddTags", f"{MODEL_ARN}/*")))
    sagemaker.create_model(**model("tagged", Tags=[{"Key": "team", "Value": "ml"}]))


def test_conditions_on_request_and_resource_tags_and_not_action(server):
    carol = user(server, "carol",
                 allow("sagemaker:CreateModel"),
                 allow("sagemaker:AddTags", Condition={"StringEquals": {"aws:RequestTag/team": "ml"},
                                                       "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}),
                 {"Effect": "Allow", "NotAction": ["sagemaker:Delete*", "sagemaker:Create*", "sagemaker:AddTags"],
                  "Resource": "*"},
                 allow("sagemaker:DeleteModel", Condition={"StringEquals": {"aws:ResourceTag/team": "ml"}}))
    sagemaker = carol("sagemaker")
    sagemaker.create_model(**model("ml-model", Tags=[{"Key": "team", "Value": "ml"}]))
    assert "not authorized to perform: sagemaker:AddTags" in denial(
        sagemaker.create_model, **model("web-model", Tags=[{"Key": "team", "Value": "web"}]))["Error"]["Message"]
    assert "sagemaker:AddTags" in denial(sagemaker.create_model, **model(
        "extra-key", Tags=[{"Key": "team", "Value": "ml"}, {"Key": "cost", "Value": "1"}]))["Error"]["Message"]
    assert sagemaker.list_models()["Models"]  # NotAction: everything but Delete*, Create* and AddTags
    client(server, "sagemaker").create_model(**model("root-model", Tags=[{"Key": "team", "Value": "web"}]))
    assert "sagemaker:DeleteModel" in denial(sagemaker.delete_model, ModelName="root-model")["Error"]["Message"]
    sagemaker.delete_model(ModelName="ml-model")  # its resource tag team=ml allows it


def test_pass_role_and_a_managed_policy(server):
    iam = client(server, "iam")
    role = iam.create_role(RoleName="SageMakerExecution", AssumeRolePolicyDocument=policy(
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}))
    role_arn = role["Role"]["Arn"]
    dave = user(server, "dave", allow("sagemaker:CreateModel"))
    error = denial(dave("sagemaker").create_model, **model("with-role", ExecutionRoleArn=role_arn))["Error"]
    assert error["Message"] == (f"User: arn:aws:iam::{ACCOUNT}:user/dave is not authorized to perform: iam:PassRole "
                                f"on resource: {role_arn} because no identity-based policy allows the iam:PassRole "
                                "action")
    iam.put_user_policy(UserName="dave", PolicyName="pass", PolicyDocument=policy(
        allow("iam:PassRole", role_arn, Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}})))
    dave("sagemaker").create_model(**model("with-role", ExecutionRoleArn=role_arn))
    # AWS's managed policies, attached to a group: read-only lists and describes, and creates nothing.
    iam.create_group(GroupName="readers")
    iam.attach_group_policy(GroupName="readers", PolicyArn="arn:aws:iam::aws:policy/AmazonSageMakerReadOnly")
    erin = user(server, "erin")
    iam.add_user_to_group(GroupName="readers", UserName="erin")
    assert erin("sagemaker").describe_model(ModelName="with-role")["ExecutionRoleArn"] == role_arn
    assert "sagemaker:CreateModel" in denial(erin("sagemaker").create_model, **model("nope"))["Error"]["Message"]
    frank = user(server, "frank", managed=["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"])
    frank("sagemaker").create_model(**model("full", Tags=[{"Key": "team", "Value": "ml"}]))


def test_invoke_endpoint_needs_the_endpoints_arn(server):
    endpoint_arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/allowed"
    grace = user(server, "grace", allow("sagemaker:InvokeEndpoint", endpoint_arn))
    runtime = grace("sagemaker-runtime")
    error = denial(runtime.invoke_endpoint, EndpointName="Other", Body=b"1", ContentType="text/csv")
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:user/grace is not authorized to perform: sagemaker:InvokeEndpoint on "
        f"resource: arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/other because no identity-based policy allows "
        "the sagemaker:InvokeEndpoint action")
    # The streaming form needs sagemaker:InvokeEndpoint too (there is no separate action for it).
    error = denial(runtime.invoke_endpoint_with_response_stream, EndpointName="Other", Body=b"1",
                   ContentType="text/csv")
    assert "not authorized to perform: sagemaker:InvokeEndpoint on resource" in error["Error"]["Message"]
    error = denial(runtime.invoke_endpoint_with_response_stream, EndpointName="Allowed", Body=b"1",
                   ContentType="text/csv")
    assert error["Error"]["Code"] == "ValidationError"
    # Allowed: the request goes on to the router, which finds no such endpoint.
    error = denial(runtime.invoke_endpoint, EndpointName="Allowed", Body=b"1", ContentType="text/csv")
    assert error["Error"]["Code"] == "ValidationError" and "not found" in error["Error"]["Message"]


def test_assume_role_sessions_and_the_trust_policy(server):
    iam = client(server, "iam")
    heidi = user(server, "heidi")
    heidi_arn = f"arn:aws:iam::{ACCOUNT}:user/heidi"
    role_arn = iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=policy(
        {"Effect": "Allow", "Principal": {"AWS": heidi_arn}, "Action": "sts:AssumeRole"}))["Role"]["Arn"]
    iam.put_role_policy(RoleName="deployer", PolicyName="models", PolicyDocument=policy(allow("sagemaker:ListModels")))
    session = heidi("sts").assume_role(RoleArn=role_arn, RoleSessionName="ci")["Credentials"]
    assert session["SessionToken"] and session["Expiration"]
    as_role = lambda service, token=session["SessionToken"]: client(  # noqa: E731
        server, service, session["AccessKeyId"], session["SecretAccessKey"], token)
    assert as_role("sts").get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci"
    as_role("sagemaker").list_models()
    assert "assumed-role/deployer/ci is not authorized to perform: sagemaker:ListEndpoints" in denial(
        as_role("sagemaker").list_endpoints)["Error"]["Message"]
    assert denial(as_role("sagemaker", "wrong-token").list_models)["Error"]["Code"] == "UnrecognizedClientException"
    # A session policy only narrows: the role allows ListModels, this session's policy does not.
    narrow = heidi("sts").assume_role(RoleArn=role_arn, RoleSessionName="narrow",
                                      Policy=policy(allow("sagemaker:DescribeModel")))["Credentials"]
    narrowed = client(server, "sagemaker", narrow["AccessKeyId"], narrow["SecretAccessKey"], narrow["SessionToken"])
    assert denial(narrowed.list_models)["Error"]["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/deployer/narrow is not authorized to perform: "
        "sagemaker:ListModels on resource: * because no session policy allows the sagemaker:ListModels action")
    # The trust policy names heidi alone: another user, and the root, may not assume the role.
    ivan = user(server, "ivan", allow("sts:AssumeRole"))
    error = denial(ivan("sts").assume_role, RoleArn=role_arn, RoleSessionName="other")["Error"]
    assert error["Code"] == "AccessDenied"
    assert error["Message"] == (f"User: arn:aws:iam::{ACCOUNT}:user/ivan is not authorized to perform: "
                                f"sts:AssumeRole on resource: {role_arn}")
    assert denial(client(server, "sts").assume_role, RoleArn=role_arn,
                  RoleSessionName="other")["Error"]["Message"] == "Roles may not be assumed by root accounts."


def test_other_services_and_smemus_own_endpoints(server):
    judy = user(server, "judy", allow("cloudwatch:ListMetrics"))
    judy("cloudwatch").list_metrics()
    assert "logs:DescribeLogGroups" in denial(judy("logs").describe_log_groups)["Error"]["Message"]
    assert "application-autoscaling:DescribeScalableTargets" in denial(
        judy("application-autoscaling").describe_scalable_targets, ServiceNamespace="sagemaker")["Error"]["Message"]
    assert "iam:ListUsers" in denial(judy("iam").list_users)["Error"]["Message"]
    assert "s3:ListAllMyBuckets" in denial(judy("s3").list_buckets)["Error"]["Message"]
    client(server, "s3").list_buckets()  # the root's keys may


def test_users_and_policies_survive_kill_9(tmp_path):
    env = {"SMEMU_ACCESS_KEYS": f"{KEY}:{SECRET}"}
    first = EmulatorProcess(tmp_path / "state", env, args=["--auth", "sigv4", "--iam"]).start()
    mallory = user(first, "mallory", allow("sagemaker:ListModels"))
    client(first, "iam").attach_user_policy(UserName="mallory",
                                            PolicyArn="arn:aws:iam::aws:policy/AmazonSageMakerReadOnly")
    first.stop(signal.SIGKILL)
    second = EmulatorProcess(tmp_path / "state", env, port=first.port, args=["--auth", "sigv4", "--iam"]).start()
    try:
        mallory("sagemaker").list_models()  # the same access key, the same inline policy
        mallory("sagemaker").list_endpoints()  # and the managed policy, still attached
        attached = client(second, "iam").list_attached_user_policies(UserName="mallory")["AttachedPolicies"]
        assert [p["PolicyName"] for p in attached] == ["AmazonSageMakerReadOnly"]
    finally:
        second.stop()


def test_without_iam_sts_and_iam_answer_and_nothing_is_enforced(emulator):
    served_url = emulator.url
    sts = boto3.client("sts", endpoint_url=served_url, region_name="us-east-1", aws_access_key_id="AKIAANY",
                       aws_secret_access_key="any")
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    iam = boto3.client("iam", endpoint_url=served_url, region_name="us-east-1", aws_access_key_id="AKIAANY",
                       aws_secret_access_key="any")
    iam.create_role(RoleName="open", AssumeRolePolicyDocument=policy(
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}))
    assert iam.get_role(RoleName="open")["Role"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/open"
    assert httpx.get(f"{served_url}/_smemu/health").status_code == 200


def test_the_policy_simulator(server):
    iam = client(server, "iam")
    user(server, "kate", allow("sagemaker:CreateModel"),
         {"Effect": "Deny", "Action": "sagemaker:Delete*", "Resource": "*"},
         allow("sagemaker:AddTags", Condition={"StringEquals": {"aws:RequestTag/team": "ml"}}))
    results = iam.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:user/kate",
        ActionNames=["sagemaker:CreateModel", "sagemaker:DeleteModel", "sagemaker:ListModels", "sagemaker:AddTags"],
        ResourceArns=[f"{MODEL_ARN}/m"])["EvaluationResults"]
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in results}
    assert decisions == {"sagemaker:CreateModel": "allowed", "sagemaker:DeleteModel": "explicitDeny",
                         "sagemaker:ListModels": "implicitDeny", "sagemaker:AddTags": "implicitDeny"}
    add_tags = next(r for r in results if r["EvalActionName"] == "sagemaker:AddTags")
    assert add_tags["MissingContextValues"] == ["aws:RequestTag/team"]
    assert results[0]["MatchedStatements"][0]["SourcePolicyId"] == "kate-policy"
    tagged = iam.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:user/kate", ActionNames=["sagemaker:AddTags"],
        ContextEntries=[{"ContextKeyName": "aws:RequestTag/team", "ContextKeyValues": ["ml"],
                         "ContextKeyType": "string"}])["EvaluationResults"]
    assert tagged[0]["EvalDecision"] == "allowed"
    custom = iam.simulate_custom_policy(PolicyInputList=[policy(allow("sagemaker:Describe*"))],
                                        ActionNames=["sagemaker:DescribeEndpoint", "sagemaker:CreateEndpoint"])
    assert [r["EvalDecision"] for r in custom["EvaluationResults"]] == ["allowed", "implicitDeny"]
    assert denial(iam.simulate_custom_policy, PolicyInputList=["{not json"],
                  ActionNames=["sagemaker:ListModels"])["Error"]["Code"] == "MalformedPolicyDocument"


def test_explain_and_the_least_privilege_policy_from_real_calls(server):
    """smemu iam policy: what nina did, as a policy; a new user with exactly that policy can do it again,
    and nothing else."""
    iam = client(server, "iam")
    role_arn = iam.create_role(RoleName="np-execution", AssumeRolePolicyDocument=policy(
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}))[
        "Role"]["Arn"]
    nina = user(server, "nina", managed=["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"])
    nina("sagemaker").create_model(**model("np-a", ExecutionRoleArn=role_arn, Tags=[{"Key": "team", "Value": "ml"}]))
    nina("sagemaker").describe_model(ModelName="np-a")
    nina("sagemaker").list_models()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
    printed = subprocess.run([sys.executable, "-m", "emulator.cli", "iam", "policy", "nina", "--url", server.url],
                             env=env, capture_output=True, text=True, check=True).stdout
    learned = json.loads(printed)
    actions = sorted(a for s in learned["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                                 else s["Action"]))
    assert actions == ["iam:PassRole", "sagemaker:AddTags", "sagemaker:CreateModel", "sagemaker:DescribeModel",
                       "sagemaker:ListModels"]
    client(server, "sagemaker").delete_model(ModelName="np-a")
    olga = user(server, "olga")
    iam.put_user_policy(UserName="olga", PolicyName="learned", PolicyDocument=json.dumps(learned))
    olga("sagemaker").create_model(**model("np-a", ExecutionRoleArn=role_arn, Tags=[{"Key": "team", "Value": "ml"}]))
    olga("sagemaker").describe_model(ModelName="np-a")
    # A tag key nina never used: the learned statement allows creating only with aws:TagKeys she sent.
    assert "not authorized to perform: sagemaker:CreateModel" in denial(olga("sagemaker").create_model, **model(
        "np-a", Tags=[{"Key": "cost", "Value": "1"}]))["Error"]["Message"]
    assert "sagemaker:ListEndpoints" in denial(olga("sagemaker").list_endpoints)["Error"]["Message"]
    explained = subprocess.run([sys.executable, "-m", "emulator.cli", "iam", "explain", "--url", server.url],
                               env=env, capture_output=True, text=True, check=True).stdout
    assert "arn:aws:iam::123456789012:user/olga  sagemaker:ListEndpoints  implicit-deny" in explained
    assert "not authorized to perform: sagemaker:ListEndpoints" in explained


def test_a_users_suite_tries_its_least_privilege_policies_with_the_plugin(tmp_path):
    """examples/test_least_privilege.py: smemu_user(policy) is all a user's suite needs."""
    assert "3 passed" in run_users_suite("test_least_privilege.py", tmp_path)


def test_the_source_ip_is_the_callers_address(server):
    """aws:SourceIp is where the request came from: a policy for 127.0.0.2 alone allows a request sent from
    127.0.0.2 (loopback takes any 127.x source) and denies the same request from 127.0.0.1."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    iam = client(server, "iam")
    iam.create_user(UserName="peggy")
    iam.put_user_policy(UserName="peggy", PolicyName="one-address", PolicyDocument=policy(
        allow("sagemaker:ListModels", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.2/32"}})))
    key = iam.create_access_key(UserName="peggy")["AccessKey"]

    def list_models_from(address: str) -> int:
        request = AWSRequest(method="POST", url=f"{server.url}/", data=b"{}", headers={
            "X-Amz-Target": "SageMaker.ListModels", "Content-Type": "application/x-amz-json-1.1"})
        SigV4Auth(Credentials(key["AccessKeyId"], key["SecretAccessKey"]), "sagemaker", "us-east-1").add_auth(request)
        with httpx.Client(transport=httpx.HTTPTransport(local_address=address)) as http:
            return http.post(f"{server.url}/", content=b"{}", headers=dict(request.headers)).status_code

    assert list_models_from("127.0.0.2") == 200
    assert list_models_from("127.0.0.1") == 400  # AccessDeniedException


def test_s3_requests_are_decided_by_action_and_resource(server):
    root_s3 = client(server, "s3")
    root_s3.create_bucket(Bucket="team-data")
    root_s3.put_object(Bucket="team-data", Key="shared/a.csv", Body=b"1,2,3")
    root_s3.put_object(Bucket="team-data", Key="private/b.csv", Body=b"4,5,6")
    rita = user(server, "rita", allow("s3:GetObject", "arn:aws:s3:::team-data/shared/*"),
                allow("s3:ListBucket", "arn:aws:s3:::team-data", Condition={"StringLike": {"s3:prefix": "shared/*"}}),
                allow("s3:PutObject", "arn:aws:s3:::team-data/shared/*"))
    s3 = rita("s3")
    assert s3.get_object(Bucket="team-data", Key="shared/a.csv")["Body"].read() == b"1,2,3"
    error = denial(s3.get_object, Bucket="team-data", Key="private/b.csv")["Error"]
    assert error["Code"] == "AccessDenied" and error["Message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:user/rita is not authorized to perform: s3:GetObject on resource: "
        "arn:aws:s3:::team-data/private/b.csv because no identity-based policy allows the s3:GetObject action")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="team-data", Prefix="shared/")["Contents"]] == ["shared/a.csv"]
    assert "s3:ListBucket" in denial(s3.list_objects_v2, Bucket="team-data")["Error"]["Message"]  # no prefix
    s3.put_object(Bucket="team-data", Key="shared/c.csv", Body=b"7")
    assert "s3:PutObject" in denial(s3.put_object, Bucket="team-data", Key="private/d.csv", Body=b"8")["Error"]["Message"]
    assert "s3:CreateBucket" in denial(s3.create_bucket, Bucket="rita-bucket")["Error"]["Message"]
    assert "s3:DeleteObject" in denial(s3.delete_object, Bucket="team-data", Key="shared/a.csv")["Error"]["Message"]


def test_an_unreadable_iam_state_is_kept_aside_never_overwritten(tmp_path):
    state = tmp_path / "state"
    (state / "iam").mkdir(parents=True)
    (state / "iam" / "state.pickle").write_bytes(b"not a pickle")
    server = EmulatorProcess(state, {"SMEMU_ACCESS_KEYS": f"{KEY}:{SECRET}"}, args=["--auth", "sigv4", "--iam"]).start()
    try:
        client(server, "iam").create_user(UserName="after")  # IAM works, and writes a new state
        kept = list((state / "iam").glob("state.pickle.unreadable-*"))
        assert len(kept) == 1 and kept[0].read_bytes() == b"not a pickle"
        assert "IAM's stored state could not be read" in server.log()
    finally:
        server.stop()


def test_a_roles_permissions_boundary_caps_its_policies(server):
    iam = client(server, "iam")
    sam_arn = f"arn:aws:iam::{ACCOUNT}:user/sam"
    user(server, "sam")
    bounded = iam.create_policy(PolicyName="list-only-boundary", PolicyDocument=policy(
        allow("sagemaker:List*"), allow("sagemaker:Describe*"),
        {"Effect": "Deny", "Action": "sagemaker:DescribeModel", "Resource": "*"}))["Policy"]["Arn"]
    role_arn = iam.create_role(RoleName="bounded", PermissionsBoundary=bounded, AssumeRolePolicyDocument=policy(
        {"Effect": "Allow", "Principal": {"AWS": sam_arn}, "Action": "sts:AssumeRole"}))["Role"]["Arn"]
    iam.put_role_policy(RoleName="bounded", PolicyName="everything", PolicyDocument=policy(allow("sagemaker:*")))
    keys = client(server, "iam")  # sam's own keys sign the AssumeRole
    sam_key = keys.create_access_key(UserName="sam")["AccessKey"]
    session = client(server, "sts", sam_key["AccessKeyId"], sam_key["SecretAccessKey"]).assume_role(
        RoleArn=role_arn, RoleSessionName="capped")["Credentials"]
    sagemaker = client(server, "sagemaker", session["AccessKeyId"], session["SecretAccessKey"],
                       session["SessionToken"])
    sagemaker.list_models()  # allowed by the role's policy and inside the boundary
    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/bounded/capped"
    assert denial(sagemaker.create_model, **model("outside"))["Error"]["Message"] == (
        f"User: {session_arn} is not authorized to perform: sagemaker:CreateModel on resource: {MODEL_ARN}/outside "
        "because no permissions boundary allows the sagemaker:CreateModel action")
    assert denial(sagemaker.describe_model, ModelName="x")["Error"]["Message"].endswith(
        "with an explicit deny in a permissions boundary")


def test_what_iam_cannot_honour_is_refused_by_name(server):
    iam = client(server, "iam")
    boundary = iam.create_policy(PolicyName="user-boundary", PolicyDocument=policy(allow("sagemaker:List*")))[
        "Policy"]["Arn"]
    error = denial(iam.create_user, UserName="bounded-user", PermissionsBoundary=boundary)["Error"]
    assert error["Code"] == "UnsupportedOperation" and "permissions boundaries on users" in error["Message"]
    assert denial(iam.get_user, UserName="bounded-user")["Error"]["Code"] == "NoSuchEntity"  # nothing was created
    iam.create_user(UserName="plain-user")
    assert denial(iam.put_user_permissions_boundary, UserName="plain-user",
                  PermissionsBoundary=boundary)["Error"]["Code"] == "UnsupportedOperation"
    error = denial(iam.change_password, OldPassword="old-password", NewPassword="new-password")["Error"]
    assert error["Code"] == "UnsupportedOperation" and "does not support ChangePassword" in error["Message"]


def test_a_role_sessions_presigned_url_carries_its_token(server):
    root_s3 = client(server, "s3")
    root_s3.create_bucket(Bucket="presigned-data")
    root_s3.put_object(Bucket="presigned-data", Key="a.csv", Body=b"1,2,3")
    iam = client(server, "iam")
    tina = user(server, "tina")
    role_arn = iam.create_role(RoleName="reader", AssumeRolePolicyDocument=policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/tina"}, "Action": "sts:AssumeRole"}))[
        "Role"]["Arn"]
    iam.put_role_policy(RoleName="reader", PolicyName="read", PolicyDocument=policy(
        allow("s3:GetObject", "arn:aws:s3:::presigned-data/*")))
    session = tina("sts").assume_role(RoleArn=role_arn, RoleSessionName="links")["Credentials"]
    s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=session["AccessKeyId"],
                      aws_secret_access_key=session["SecretAccessKey"], aws_session_token=session["SessionToken"],
                      config=botocore.config.Config(signature_version="s3v4"))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "presigned-data", "Key": "a.csv"}, ExpiresIn=60)
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200 and answer.content == b"1,2,3"
    assert httpx.get(url.replace("X-Amz-Security-Token=", "X-Amz-Security-Token=x"), timeout=10).status_code == 403


def test_the_roots_calls_are_recorded_too(server):
    """smemu iam policy root: the calls made with the root's keys, SageMaker's control plane included."""
    client(server, "sagemaker").create_model(**model("root-recorded", Tags=[{"Key": "stage", "Value": "dev"}]))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
    learned = json.loads(subprocess.run([sys.executable, "-m", "emulator.cli", "iam", "policy", "root", "--url",
                                         server.url], env=env, capture_output=True, text=True, check=True).stdout)
    created = next(s for s in learned["Statement"] if "sagemaker:CreateModel" in
                   ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    assert f"{MODEL_ARN}/root-recorded" in ([created["Resource"]] if isinstance(created["Resource"], str)
                                            else created["Resource"])
    assert "stage" in created["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]
