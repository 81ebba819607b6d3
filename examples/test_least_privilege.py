"""Trying a least-privilege policy before AWS does, with smemu's pytest plugin (no conftest needed).

Run: `.venv/bin/python -m pytest examples/test_least_privilege.py`. `smemu_user(policy)` makes an IAM
user with that policy on an emulator that evaluates IAM (`--auth sigv4 --iam`); its clients are
signed with its own key, so every call is allowed or denied as AWS would decide it.
"""
import pytest
from botocore.exceptions import ClientError

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
CREATE_ONLY = {"Effect": "Allow", "Action": "sagemaker:CreateModel", "Resource": "*"}
TAGGING = {"Effect": "Allow", "Action": "sagemaker:AddTags", "Resource": "*",
           "Condition": {"StringEquals": {"aws:RequestTag/team": "ml"}}}


def create_tagged_model(sagemaker, name, team="ml"):
    """What Studio does: every resource it creates is tagged."""
    sagemaker.create_model(ModelName=name, PrimaryContainer={"Image": IMAGE},
                           Tags=[{"Key": "team", "Value": team}])


def test_a_create_only_policy_fails_on_the_tags(smemu_user):
    sagemaker = smemu_user(CREATE_ONLY).client("sagemaker")
    with pytest.raises(ClientError) as denied:
        create_tagged_model(sagemaker, "lp-create-only")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "sagemaker:AddTags" in denied.value.response["Error"]["Message"]


def test_the_policy_with_tagging_works_for_its_own_team_only(smemu_user):
    sagemaker = smemu_user([CREATE_ONLY, TAGGING]).client("sagemaker")
    create_tagged_model(sagemaker, "lp-tagged")
    with pytest.raises(ClientError):
        create_tagged_model(sagemaker, "lp-other-team", team="web")


def test_the_managed_read_only_policy_reads_and_creates_nothing(smemu_user):
    reader = smemu_user(managed=["arn:aws:iam::aws:policy/AmazonSageMakerReadOnly"]).client("sagemaker")
    reader.list_models()
    with pytest.raises(ClientError):
        create_tagged_model(reader, "lp-reader")
