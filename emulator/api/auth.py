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

from urllib.parse import parse_qsl

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
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


class _S3Resigner(_Resigner, S3SigV4Auth):
    """S3's variant: the path as sent, the payload hash the client declared."""


class _S3QueryResigner(_Resigner, S3SigV4QueryAuth):
    """A presigned URL: the query without its signature, the payload unsigned."""

    def __init__(self, credentials, service, region, signed):
        _Resigner.__init__(self, credentials, service, region, signed)


def _s3_error(code: str, message: str) -> ServiceError:
    return ServiceError(code, message, 403)


class SigV4Verifier:
    def __init__(self, keys: dict[str, str], clock=lambda: datetime.now(timezone.utc)):
        self.keys = keys
        self.clock = clock

    def verify(self, method: str, raw_path: bytes, query: bytes, headers: dict[str, str], body: bytes) -> str:
        """The access key that signed the request; a ServiceError (403) unless it is known and the signature
        holds. ``headers``: lower-cased. ``keys`` is any mapping with ``get`` (IAM's keys come and go)."""
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
        return match["key"]

    def verify_s3(self, method: str, raw_path: bytes, query: bytes, headers: dict[str, str]):
        """S3's SigV4, in S3's error codes: an Authorization header (its payload hash as the client declared
        it; moto checks the body's checksums) or a presigned URL (expiry included)."""
        if headers.get("authorization", "").startswith("AWS ") or b"AWSAccessKeyId=" in query:
            raise _s3_error("AccessDenied", "smemu verifies AWS Signature Version 4 only; sign S3 requests with it "
                                            "(boto3: Config(signature_version='s3v4')).")
        if headers.get("authorization"):
            match = _AUTHORIZATION.match(headers["authorization"])
            if match is None:
                raise _s3_error("AccessDenied", "Unsupported Authorization Type: smemu verifies AWS Signature Version 4.")
            stamp, signed, signature = headers.get("x-amz-date", ""), match["signed"].split(";"), match["signature"]
            key, region, service, url_query = match["key"], match["region"], match["service"], query
            signer_class = _S3Resigner
        else:
            params = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
            if "X-Amz-Signature" not in params:
                raise _s3_error("AccessDenied", "Access Denied")  # anonymous: nothing is public here
            credential = params.get("X-Amz-Credential", "").split("/")
            if len(credential) != 5:
                raise _s3_error("AuthorizationQueryParametersError", "Error parsing the X-Amz-Credential parameter.")
            key, _, region, service, _ = credential
            stamp, signed, signature = params.get("X-Amz-Date", ""), params.get("X-Amz-SignedHeaders", "host").split(";"), params["X-Amz-Signature"]
            url_query = "&".join(part for part in query.decode("latin-1").split("&")
                                 if not part.startswith("X-Amz-Signature=")).encode("latin-1")
            signer_class = _S3QueryResigner
        secret = self.keys.get(key)
        if secret is None:
            raise _s3_error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
        try:
            when = datetime.strptime(stamp, _TIMESTAMP).replace(tzinfo=timezone.utc)
        except ValueError:
            raise _s3_error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header") from None
        now = self.clock()
        if signer_class is _S3QueryResigner:
            expires = int(dict(parse_qsl(query.decode("latin-1"))).get("X-Amz-Expires", "0") or 0)
            if now > when + timedelta(seconds=expires):
                raise _s3_error("AccessDenied", "Request has expired")
        elif abs(now - when) > MAX_SKEW:
            raise _s3_error("RequestTimeTooSkewed", "The difference between the request time and the current time "
                                                    "is too large.")
        url = f"http://{headers.get('host', 'localhost')}{raw_path.decode('latin-1')}"
        if url_query:
            url += "?" + url_query.decode("latin-1")
        request = AWSRequest(method=method, url=url, headers={name: headers.get(name, "") for name in signed})
        if signer_class is _S3Resigner:
            request.headers["X-Amz-Content-SHA256"] = headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        request.context["timestamp"] = stamp
        signer = signer_class(Credentials(key, secret), service, region, signed)
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        if not hmac.compare_digest(expected, signature):
            raise _s3_error("SignatureDoesNotMatch", "The request signature we calculated does not match the "
                                                     "signature you provided. Check your key and signing method.")
        return key
