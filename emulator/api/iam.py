"""IAM and STS on smemu's own port: moto's implementations behind the one listener, durable on disk.

A request is IAM's or STS's when its SigV4 scope says so (botocore's ``iam`` and ``sts`` models speak
the query protocol: a form POST answered in XML). It runs in moto's app (WSGI) under one lock; a change
is written to disk (``control/iam/store.py``) before its answer leaves, so it survives ``kill -9``.
With ``--iam`` the caller's identity-based policies decide first (api/guard.py), and AssumeRole also
needs the role's trust policy. AWS's managed policies (AmazonSageMakerFullAccess, …) are moto's copy
of AWS's published documents. See docs/iam.md.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from ..control.errors import ServiceError
from ..control.iam.authorize import AccessDenied
from ..control.iam.evaluator import IMPLICIT_DENY, Decision, PolicyError
from ..control.iam.principals import ROOT, Principals
from ..control.iam.simulate import context_of, simulate
from ..control.iam.store import IamStore
from . import query
from .asgi import client_ip, read_body
from .motowsgi import run_wsgi, wsgi_environ
from .protocol import service_model

log = logging.getLogger("smemu.iam")
MAX_BODY = 1024 * 1024
NAMESPACE = {"iam": "https://iam.amazonaws.com/doc/2010-05-08/", "sts": "https://sts.amazonaws.com/doc/2011-06-15/"}
READ_ONLY = ("Get", "List", "Simulate")
SIMULATIONS = ("SimulatePrincipalPolicy", "SimulateCustomPolicy")
USER_BOUNDARIES = ("PutUserPermissionsBoundary", "DeleteUserPermissionsBoundary")


def iam_service(scope) -> str | None:
    """"iam" or "sts" when the request is signed for one of them."""
    for key, value in scope["headers"]:
        if key == b"authorization":
            if b"/iam/aws4_request" in value:
                return "iam"
            if b"/sts/aws4_request" in value:
                return "sts"
    return None


class IamApi:
    def __init__(self, account_id: str, root_keys: dict[str, str], store: IamStore):
        self.account = account_id
        self.store = store
        self.lock = threading.Lock()  # moto's backends are not thread-safe; the disk copy follows each change
        self._backends = None
        self._loading = threading.Lock()
        self.principals = Principals(self, root_keys, account_id, self.lock)
        self.pool = ThreadPoolExecutor(2, thread_name_prefix="iam")
        self.guard = None  # set by the app (api/guard.py)

    def _loaded(self) -> tuple:
        """moto's IAM and STS, with the state on disk, once something first needs them: importing moto's IAM
        (and AWS's managed policies) takes about 0.4 s, which a server that never sees IAM should not pay."""
        if self._backends is None:
            with self._loading:
                if self._backends is None:
                    os.environ["MOTO_ACCOUNT_ID"] = self.account
                    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # AWS's managed policies, as moto ships
                    from moto.iam.models import iam_backends
                    from moto.moto_server.werkzeug_app import create_backend_app
                    from moto.sts.models import sts_backends

                    iam, sts = iam_backends[self.account]["aws"], sts_backends[self.account]["aws"]
                    self.store.restore(iam, sts)
                    apps = {"iam": create_backend_app("iam"), "sts": create_backend_app("sts")}
                    self._backends = (iam, sts, apps)
        return self._backends

    @property
    def iam(self):
        return self._loaded()[0]

    @property
    def sts(self):
        return self._loaded()[1]

    @property
    def apps(self) -> dict:
        return self._loaded()[2]

    async def __call__(self, scope, receive, send, service: str):
        body = await read_body(receive, MAX_BODY) or b""
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        params.update(parse_qsl(body.decode("utf-8", "replace")))
        action = params.get("Action", "")
        try:
            principal = self.guard.verify_scope(scope, body)
            if service == "sts" and action == "GetCallerIdentity" and principal.kind == ROOT:
                await _send(send, 200, _identity_xml(self.account))
                return
            if service == "sts" and action == "AssumeRole":
                self._check_trust(principal, params.get("RoleArn", ""), client_ip(scope))
            else:
                self.guard.authorize(principal, service, action, params, "us-east-1", "AccessDenied", 403,
                                     client_ip(scope))
            if service == "iam" and (action in USER_BOUNDARIES or (action == "CreateUser" and
                                                                  params.get("PermissionsBoundary"))):
                raise ServiceError("UnsupportedOperation", "smemu does not support permissions boundaries on users "
                                   "(nothing would enforce them); a role's boundary (CreateRole, "
                                   "PutRolePermissionsBoundary) is enforced.", 400)
            if service == "iam" and action in SIMULATIONS:
                status, payload = 200, self._simulate(action, params)
            else:
                status, payload = await asyncio.get_running_loop().run_in_executor(
                    self.pool, self._handle, scope, body, action, service)
        except ServiceError as exc:
            code = "InvalidClientTokenId" if exc.code == "UnrecognizedClientException" else exc.code
            status, payload = exc.status, _error_xml(service, code, exc.message)
        except Exception:  # an emulator bug: say so in the service's own form, and log it
            log.exception("internal error in %s.%s", service, action)
            status, payload = 500, _error_xml(service, "InternalFailure", "An internal error occurred in smemu; "
                                              "see its log.")
        await _send(send, status, payload)

    def _check_trust(self, principal, role_arn: str, source_ip: str):
        """AssumeRole: the role's trust policy must let the caller in; where it names only the account,
        the caller's own policies must also allow sts:AssumeRole on the role (IAM's user guide)."""
        if principal.kind == ROOT:
            if self.guard.enforce:
                raise ServiceError("AccessDenied", "Roles may not be assumed by root accounts.", 403)
            return
        trust = self.principals.trust(role_arn, principal)
        if trust is None and self.guard.enforce:
            denied = AccessDenied(f"User: {principal.arn} is not authorized to perform: sts:AssumeRole on "
                                  f"resource: {role_arn}", Decision(IMPLICIT_DENY))
            self.guard.deny(principal, "sts", "AssumeRole", denied)
            raise ServiceError("AccessDenied", denied.message, 403)
        if trust == "account":
            self.guard.authorize(principal, "sts", "AssumeRole", {"RoleArn": role_arn}, "us-east-1",
                                 "AccessDenied", 403, source_ip)

    def _simulate(self, action: str, params: dict) -> bytes:
        """IAM's policy simulator, which moto lacks: smemu's evaluator decides (control/iam/simulate.py)."""
        operation = service_model("iam").operation_model(action)
        request = query.parse(operation.input_shape, params)
        given = [(f"PolicyInputList.{n}", _policy(text, f"PolicyInputList.{n}"), "none")
                 for n, text in enumerate(request.get("PolicyInputList") or [], start=1)]
        if action == "SimulatePrincipalPolicy":
            source = request["PolicySourceArn"]
            attached = self.principals.policies_of(source)
            if attached is None:
                raise ServiceError("NoSuchEntity", f"The principal {source} cannot be found.", 404)
            caller = request.get("CallerArn") or source
            policies = attached + given
        else:
            caller = request.get("CallerArn") or "*"
            policies = given
        try:
            results = simulate(caller, policies, request["ActionNames"], request.get("ResourceArns"),
                               context_of(request.get("ContextEntries")))
        except PolicyError as exc:
            raise ServiceError("MalformedPolicyDocument", str(exc), 400) from None
        return query.response(operation, {"EvaluationResults": results, "IsTruncated": False}, NAMESPACE["iam"],
                              str(uuid.uuid4()))

    def _handle(self, scope, body: bytes, action: str, service: str) -> tuple[int, bytes]:
        environ = wsgi_environ(scope, io.BytesIO(body))
        with self.lock:
            try:
                answer = run_wsgi(self.apps[service], environ)
            except NotImplementedError:
                raise ServiceError("UnsupportedOperation", f"smemu's {service.upper()} does not support {action} (moto, "
                                   f"which serves {service.upper()} here, does not implement it).", 400) from None
            if answer["status"] < 400 and not action.startswith(READ_ONLY):
                self.store.save(self.iam, self.sts)
                self.principals.changed()
        return answer["status"], answer["payload"]


def _policy(text: str, where: str) -> dict:
    try:
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError
        return document
    except ValueError:
        raise ServiceError("MalformedPolicyDocument", f"{where} is not a JSON policy document.", 400) from None


def _identity_xml(account: str) -> bytes:
    """GetCallerIdentity for the account's root keys (moto would name a user of its own)."""
    return (f'<GetCallerIdentityResponse xmlns="{NAMESPACE["sts"]}"><GetCallerIdentityResult>'
            f"<Arn>arn:aws:iam::{account}:root</Arn><UserId>{account}</UserId><Account>{account}</Account>"
            f"</GetCallerIdentityResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
            "</ResponseMetadata></GetCallerIdentityResponse>").encode()


def _error_xml(service: str, code: str, message: str) -> bytes:
    return (f'<ErrorResponse xmlns="{NAMESPACE[service]}"><Error><Type>Sender</Type><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
            "</ErrorResponse>").encode()


async def _send(send, status: int, payload: bytes):
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/xml"), (b"content-length", str(len(payload)).encode()),
        (b"x-amzn-requestid", str(uuid.uuid4()).encode())]})
    await send({"type": "http.response.body", "body": payload})
