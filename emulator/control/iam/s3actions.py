"""Which IAM action an S3 REST request is, and on which resource (the Service Authorization Reference's
"Actions defined by Amazon S3", and the S3 API reference's "permissions" line of each operation): a bucket's
ARN ``arn:aws:s3:::BUCKET`` for bucket operations, an object's ``arn:aws:s3:::BUCKET/KEY`` for object
operations, ``*`` for ListAllMyBuckets. Pure."""
from __future__ import annotations

# (method, subresource) → action, for requests on a bucket and on an object; "" is no subresource.
BUCKET = {
    ("GET", ""): "ListBucket", ("HEAD", ""): "ListBucket", ("PUT", ""): "CreateBucket", ("DELETE", ""): "DeleteBucket",
    ("GET", "versions"): "ListBucketVersions", ("GET", "uploads"): "ListBucketMultipartUploads",
    ("GET", "location"): "GetBucketLocation", ("GET", "cors"): "GetBucketCORS", ("PUT", "cors"): "PutBucketCORS",
    ("DELETE", "cors"): "PutBucketCORS", ("GET", "policy"): "GetBucketPolicy", ("PUT", "policy"): "PutBucketPolicy",
    ("DELETE", "policy"): "DeleteBucketPolicy", ("GET", "tagging"): "GetBucketTagging",
    ("PUT", "tagging"): "PutBucketTagging", ("DELETE", "tagging"): "PutBucketTagging",
    ("GET", "versioning"): "GetBucketVersioning", ("PUT", "versioning"): "PutBucketVersioning",
    ("GET", "acl"): "GetBucketAcl", ("PUT", "acl"): "PutBucketAcl",
    ("GET", "lifecycle"): "GetLifecycleConfiguration", ("PUT", "lifecycle"): "PutLifecycleConfiguration",
    ("DELETE", "lifecycle"): "PutLifecycleConfiguration", ("GET", "encryption"): "GetEncryptionConfiguration",
    ("PUT", "encryption"): "PutEncryptionConfiguration", ("GET", "notification"): "GetBucketNotification",
    ("PUT", "notification"): "PutBucketNotification", ("GET", "publicAccessBlock"): "GetBucketPublicAccessBlock",
    ("PUT", "publicAccessBlock"): "PutBucketPublicAccessBlock", ("GET", "ownershipControls"):
    "GetBucketOwnershipControls", ("PUT", "ownershipControls"): "PutBucketOwnershipControls",
    ("POST", "delete"): "DeleteObject",
}
OBJECT = {
    ("GET", ""): "GetObject", ("HEAD", ""): "GetObject", ("PUT", ""): "PutObject", ("DELETE", ""): "DeleteObject",
    ("POST", ""): "PutObject", ("POST", "uploads"): "PutObject", ("POST", "uploadId"): "PutObject",
    ("PUT", "uploadId"): "PutObject", ("DELETE", "uploadId"): "AbortMultipartUpload",
    ("GET", "uploadId"): "ListMultipartUploadParts", ("GET", "tagging"): "GetObjectTagging",
    ("PUT", "tagging"): "PutObjectTagging", ("DELETE", "tagging"): "DeleteObjectTagging",
    ("GET", "acl"): "GetObjectAcl", ("PUT", "acl"): "PutObjectAcl", ("GET", "attributes"): "GetObjectAttributes",
}
SUBRESOURCES = {subresource for _, subresource in (*BUCKET, *OBJECT)} - {""}


class UnknownS3Request(ValueError):
    pass


def s3_action(method: str, bucket: str, key: str, query: dict[str, str]) -> tuple[str, str]:
    """(action without "s3:", resource ARN) of one request; UnknownS3Request for one smemu cannot name."""
    if not bucket:
        if method == "GET":
            return "ListAllMyBuckets", "*"
        raise UnknownS3Request(f"{method} /")
    subresource = next((name for name in query if name in SUBRESOURCES), "")
    if key:
        action = OBJECT.get((method, subresource))
        if subresource == "" and "versionId" in query and method in ("GET", "HEAD"):
            action = "GetObjectVersion"
        resource = f"arn:aws:s3:::{bucket}/{key}"
    else:
        action = BUCKET.get((method, subresource))
        resource = f"arn:aws:s3:::{bucket}/*" if action == "DeleteObject" else f"arn:aws:s3:::{bucket}"
    if action is None:
        raise UnknownS3Request(f"{method} {'object' if key else 'bucket'}{'?' + subresource if subresource else ''}")
    return action, resource
