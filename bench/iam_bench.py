"""What --iam adds to a request: finding the caller by access key and evaluating its policies, in process.
A user with 10 attached policies (inline and customer managed, with wildcards and conditions, plus AWS's
AmazonSageMakerFullAccess); CPU microseconds per request (best of 5 × 5,000) for InvokeEndpoint and for a
tagged CreateModel (two decisions: the create and sagemaker:AddTags)."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from emulator.api.guard import Guard
from emulator.api.iam import IamApi
from emulator.control.iam.store import IamStore

ACCOUNT = "123456789012"


def _policy(index: int) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": f"Models{index}", "Effect": "Allow", "Action": ["sagemaker:Describe*", f"sagemaker:List*{index}"],
         "Resource": f"arn:aws:sagemaker:*:{ACCOUNT}:model/team{index}-*"},
        {"Effect": "Allow", "Action": "sagemaker:AddTags", "Resource": "*",
         "Condition": {"StringEquals": {f"aws:RequestTag/team{index}": "ml"}, "Bool": {"aws:SecureTransport": "false"}}},
        {"Effect": "Deny", "NotAction": "sagemaker:*", "Resource": f"arn:aws:s3:::bucket{index}/*"}]})


def guard_with_user() -> tuple[Guard, str]:
    api = IamApi(ACCOUNT, {}, IamStore(Path(tempfile.mkdtemp()) / "iam.pickle"))
    iam = api.iam
    iam.create_user("us-east-1", "bench", "/", None)
    for index in range(7):
        iam.put_user_policy("bench", f"inline{index}", _policy(index))
    for index in range(7, 9):
        policy = iam.create_policy("", "/", _policy(index), f"customer{index}", [])
        iam.attach_user_policy(policy.arn, "bench")
    iam.attach_user_policy("arn:aws:iam::aws:policy/AmazonSageMakerFullAccess", "bench")
    key = iam.create_access_key("bench").access_key_id
    guard = Guard({}, api.principals, ACCOUNT, lambda arn: {"team": "ml"}, enforce=True)
    return guard, key


def _cpu_us(call, rounds: int = 5, count: int = 5000) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        for _ in range(count):
            call()
        best = min(best, (time.thread_time() - started) / count * 1e6)
    return best


def main() -> dict:
    guard, key = guard_with_user()
    assert len(guard.principals.find(key).policies) == 10
    headers = {}
    model = {"ModelName": "team1-model", "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/AmazonSageMaker-Exec",
             "Tags": [{"Key": "team1", "Value": "ml"}]}

    def invoke():
        guard.authorize(guard.principal_of(key, headers), "sagemaker-runtime", "InvokeEndpoint",
                        {"EndpointName": "team1-endpoint"}, "us-east-1")

    def create():
        guard.authorize(guard.principal_of(key, headers), "sagemaker", "CreateModel", model, "us-east-1")

    invoke()
    create()
    return {"invoke_us": _cpu_us(invoke), "create_tagged_us": _cpu_us(create)}


if __name__ == "__main__":
    print(main())
