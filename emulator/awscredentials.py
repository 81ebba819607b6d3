"""This environment's AWS credentials, as boto3 finds them, without asking a metadata service.

boto3's chain ends with the EC2 instance metadata service (and a container credentials endpoint): with no
credentials in the environment or the config files, a lookup sends an HTTP request to 169.254.169.254.
smemu's own clients only sign requests to a local emulator, so they look in the environment, the config
and credentials files, SSO and credential processes, and stop there."""
from __future__ import annotations

# botocore's names for the providers that reach a link-local metadata endpoint.
METADATA_PROVIDERS = ("iam-role", "container-role")


def session():
    """A boto3 session whose credential chain never asks a metadata service."""
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    resolver = core.get_component("credential_provider")
    for name in METADATA_PROVIDERS:
        try:
            resolver.remove(name)
        except Exception:  # not in this botocore's chain
            pass
    return boto3.Session(botocore_session=core)


def local_credentials():
    """The credentials found without a metadata service, or None."""
    return session().get_credentials()
