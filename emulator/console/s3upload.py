"""Uploads from the browser straight to the bucket, as Studio makes them: the console hands out a
presigned PUT URL and the browser sends the file to S3 itself, a cross-origin request that the
bucket's CORS rules then allow or refuse (the browser decides, not smemu).

Studio's rule (SageMaker developer guide, "Grant your users permissions to upload local files",
canvas-set-up-local-upload): AllowedHeaders *, AllowedMethods POST PUT GET HEAD DELETE, the
console's origin (Studio's is https://*.sagemaker.aws), and the S3 headers a client reads exposed.
A bucket the console creates gets it, as SageMaker attaches it to the bucket it creates; a bucket
that exists keeps its own rules, and a refused upload is explained with the rule to add.
"""
from __future__ import annotations

import json
import uuid
from urllib.parse import urlparse

from ..runtime.modeldata import own_s3_in_use, own_s3_url, s3_client
from .errors import FieldError

EXPOSED = ["ETag", "x-amz-delete-marker", "x-amz-id-2", "x-amz-request-id", "x-amz-server-side-encryption",
           "x-amz-version-id"]


def studio_rule(origin: str) -> dict:
    return {"AllowedHeaders": ["*"], "AllowedMethods": ["POST", "PUT", "GET", "HEAD", "DELETE"],
            "AllowedOrigins": [origin], "ExposeHeaders": EXPOSED}


def _client(region: str, virtual: bool, credentials: tuple | None = None):
    """S3's client; for smemu's own S3, one that writes BUCKET.localhost:PORT URLs: a browser resolves
    *.localhost to loopback by itself, and the upload is then cross-origin, as Studio's is. ``credentials``
    (key, secret, token): the signed-in principal's, where smemu checks signatures."""
    if not virtual or not own_s3_in_use():
        return s3_client(region)
    import boto3
    from botocore.config import Config

    port = urlparse(own_s3_url()).port
    key, secret, token = credentials or ("smemu", "smemu", None)
    return boto3.client("s3", endpoint_url=f"http://localhost:{port}", region_name=region,
                        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
                        config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))


def ensure_bucket(client, bucket: str, region: str, origin: str) -> bool:
    """Create ``bucket`` in ``region`` with Studio's CORS rule for ``origin`` unless it exists (True: created)."""
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except client.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise FieldError("Bucket", f"Bucket {bucket} cannot be used: {exc}") from None
    params = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    client.create_bucket(Bucket=bucket, **params)
    client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [studio_rule(origin)]})
    return True


class BrowserUploads:
    def __init__(self, region: str, check_bucket):
        self.region = region
        self.check_bucket = check_bucket

    def presign(self, req: dict, origin: str, credentials: tuple | None = None) -> dict:
        """A presigned PUT for one file into the bucket (created with Studio's CORS rule when missing)."""
        bucket = self.check_bucket(req.get("Bucket"))
        name = (req.get("FileName") or "model.tar.gz").rsplit("/", 1)[-1] or "model.tar.gz"
        key = f"console-uploads/{uuid.uuid4().hex}/{name}"
        created = ensure_bucket(s3_client(self.region), bucket, self.region, origin)
        url = _client(self.region, True, credentials).generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)
        return {"Url": url, "S3Uri": f"s3://{bucket}/{key}", "Created": created}

    def cors_advice(self, bucket: str, origin: str) -> dict:
        """Why a browser upload to ``bucket`` was refused, and the rule that lets it through."""
        rule = studio_rule(origin)
        configuration = json.dumps({"CORSRules": [rule]}, separators=(",", ":"))
        endpoint = f" --endpoint-url {own_s3_url()}" if own_s3_in_use() else ""
        try:
            rules = s3_client(self.region).get_bucket_cors(Bucket=bucket)["CORSRules"]
        except Exception:
            rules = []
        return {"Message": f"Your browser refused the upload to bucket {bucket}: its CORS rules do not allow this "
                           f"console ({origin}). Studio needs this rule on the bucket it uploads to:",
                "Rule": rule, "Current": rules,
                "Command": f"aws s3api put-bucket-cors --bucket {bucket} --cors-configuration '{configuration}'{endpoint}"}
