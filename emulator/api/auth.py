"""Who may come in: SigV4 verification with botocore's own signer (``--auth sigv4``).

The canonical request is rebuilt from what arrived (method, raw path, query, the headers the
client says it signed, the body) and signed again with the secret of the request's access key;
the signatures must match, and the request's time must be within five minutes of the server's.
Failures get AWS's codes: MissingAuthenticationToken (nothing signed),
UnrecognizedClientException (an access key smemu does not know), InvalidSignatureException (a
wrong signature, or a clock too far off).
"""
from __future__ import annotations

import configparser
import hmac
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from ..control.errors import ServiceError

MAX_SKEW = timedelta(minutes=5)
_AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
                            r"(?P<service>[^/]+)/aws4_request,\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
                            r"Signature=(?P<signature>[0-9a-f]+)")
_TIMESTAMP = "%Y%m%dT%H%M%SZ"


def _error(code: str, message: str) -> ServiceError:
    return ServiceError(code, message, 403)


def access_keys(keys: str, credentials_file: str) -> dict[str, str]:
    """Access key id → secret, from ``AKID:SECRET,AKID2:SECRET2`` and an AWS credentials file."""
    found = {}
    for pair in filter(None, (p.strip() for p in keys.split(","))):
        key, _, secret = pair.partition(":")
        if not key or not secret:
            raise ValueError("SMEMU_ACCESS_KEYS must be ACCESS_KEY_ID:SECRET pairs separated by commas")
        found[key] = secret
    if credentials_file:
        parser = configparser.ConfigParser()
        if not parser.read(Path(credentials_file).expanduser()):
            raise ValueError(f"cannot read the credentials file {credentials_file}")
        for section in parser.sections():
            key, secret = parser[section].get("aws_access_key_id"), parser[section].get("aws_secret_access_key")
            if key and secret:
                found[key] = secret
    return found


class _Resigner(SigV4Auth):
    """botocore's signer, limited to the headers the client signed."""

    def __init__(self, credentials, service, region, signed: list[str]):
        super().__init__(credentials, service, region)
        self.signed = signed

    def headers_to_sign(self, request):
        headers = HTTPHeaders()
        for name in self.signed:
            headers[name] = request.headers.get(name, "")
        return headers


class SigV4Verifier:
    def __init__(self, keys: dict[str, str], clock=lambda: datetime.now(timezone.utc)):
        self.keys = keys
        self.clock = clock

    def verify(self, method: str, raw_path: bytes, query: bytes, headers: dict[str, str], body: bytes):
        """Raise a ServiceError (403) unless the request is signed by a known key. ``headers``: lower-cased."""
        authorization = headers.get("authorization", "")
        if not authorization:
            raise _error("MissingAuthenticationToken", "Request is missing Authentication Token")
        match = _AUTHORIZATION.match(authorization)
        if match is None:
            raise _error("IncompleteSignatureException", "The request signature is not a valid AWS Signature "
                                                         "Version 4 Authorization header.")
        secret = self.keys.get(match["key"])
        if secret is None:
            raise _error("UnrecognizedClientException", "The security token included in the request is invalid.")
        stamp = headers.get("x-amz-date", "")
        try:
            when = datetime.strptime(stamp, _TIMESTAMP).replace(tzinfo=timezone.utc)
        except ValueError:
            raise _error("IncompleteSignatureException", "The request has no valid X-Amz-Date header.") from None
        now = self.clock()
        if when < now - MAX_SKEW:
            raise _error("InvalidSignatureException", f"Signature expired: {stamp} is now earlier than "
                         f"{(now - MAX_SKEW).strftime(_TIMESTAMP)} ({now.strftime(_TIMESTAMP)} - 5 min.)")
        if when > now + MAX_SKEW:
            raise _error("InvalidSignatureException", f"Signature not yet current: {stamp} is still later than "
                         f"{(now + MAX_SKEW).strftime(_TIMESTAMP)} ({now.strftime(_TIMESTAMP)} + 5 min.)")
        signed = match["signed"].split(";")
        url = f"http://{headers.get('host', 'localhost')}{raw_path.decode('latin-1')}"
        if query:
            url += "?" + query.decode("latin-1")
        request = AWSRequest(method=method, url=url, data=body,
                             headers={name: headers.get(name, "") for name in signed})
        if "x-amz-content-sha256" in headers:
            request.headers["X-Amz-Content-SHA256"] = headers["x-amz-content-sha256"]
        request.context["timestamp"] = stamp
        signer = _Resigner(Credentials(match["key"], secret), match["service"], match["region"], signed)
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        if not hmac.compare_digest(expected, match["signature"]):
            raise _error("InvalidSignatureException", "The request signature we calculated does not match the "
                         "signature you provided. Check your AWS Secret Access Key and signing method. Consult the "
                         "service documentation for details.")
