"""The console's pages and its few server-side routes."""
from __future__ import annotations

import asyncio

import datetime
import json
from pathlib import Path
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ..config import DEFAULT_ROLE
from ..control.components import ComponentReconciler
from ..control.components.views import placement
from ..control.deployments.views import deployments
from ..control.errors import ServiceError
from ..router.metrics import Metrics
from ..runtime.fleet import FleetRegistry
from ..scheduler.catalog import Catalog
from .actions import ConsoleActions, check_bucket, configured_s3, prebuilt_images, s3_server
from .s3upload import BrowserUploads
from .errors import FieldError
from .hosting import EndpointCapture
from .uploads import UploadError, Uploads

HERE = Path(__file__).resolve().parent
LIVE_LOG_EVENTS = 200  # log lines one refresh of the endpoint page brings at most


def console_app(sagemaker, logs, region: str, state_dir: Path, catalog: Catalog, runtime, registry: FleetRegistry,
                reconciler: ComponentReconciler, metrics: Metrics, recommender: bool = True,
                account_id: str = "123456789012", pricing=None, access=None) -> FastAPI:
    """``sagemaker``, ``logs`` and ``pricing`` are the providers of those services (``call(operation, params,
    region)``). ``access``: under ``--auth sigv4``, sign-in and the signed-in principal's permissions
    (api/consoleauth.py); None on an open server."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["when"] = local_time
    uploads = Uploads(state_dir / "console" / "uploads")

    def call(operation: str, params: dict) -> dict:
        if access is not None:  # as the signed-in principal: under --iam its policies decide
            access.authorize("sagemaker", operation, params, region)
        return sagemaker.call(operation, params, region)

    actions = ConsoleActions(call, uploads, state_dir / "console" / "packages", region, runtime.check_image)
    capture = EndpointCapture(call, region)
    # Where the deploy page sends captured data unless told otherwise: the S3 server, else a local folder.
    capture_default = (f"s3://sagemaker-{region}-data-capture/" if configured_s3()
                       else (state_dir / "data-capture").resolve().as_uri())
    browser_uploads = BrowserUploads(region, check_bucket)

    def listing(operation: str, key: str, **params) -> list[dict]:
        items, token = [], None
        while True:
            page = call(operation, {**params, "MaxResults": 100, **({"NextToken": token} if token else {})})
            items += page[key]
            token = page.get("NextToken")
            if not token:
                return items

    def page(request: Request, template: str, **context):
        return templates.TemplateResponse(request, template, {
            "page": template.split(".")[0], "signed_in": access.who() if access is not None else None, **context})

    @app.exception_handler(ServiceError)
    async def denied(request: Request, exc: ServiceError):
        """A call the signed-in principal may not make: said where it happened, with AWS's text."""
        if request.url.path.startswith("/console/api/"):
            return refused(exc)
        return templates.TemplateResponse(request, "denied.html", {"page": "denied", "error": exc, "signed_in":
                                          access.who() if access is not None else None}, status_code=exc.status)

    def instance_prices() -> tuple[dict, str | None]:
        """Each instance type's hourly price from the Price List API (GetProducts, as Studio reads them), or
        why there are none (the principal may not call pricing:GetProducts)."""
        params = {"ServiceCode": "AmazonSageMaker", "Filters": [
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
            {"Type": "TERM_MATCH", "Field": "component", "Value": "Hosting"}], "MaxResults": 100}
        prices, token = {}, None
        try:
            while True:
                request = {**params, **({"NextToken": token} if token else {})}
                if access is not None:
                    access.authorize("pricing", "GetProducts", request, region)
                answer = pricing.call("GetProducts", request, region)
                for text in answer["PriceList"]:
                    product = json.loads(text)
                    attributes = product["product"]["attributes"]
                    term = next(iter(product["terms"]["OnDemand"].values()))
                    usd = float(next(iter(term["priceDimensions"].values()))["pricePerUnit"]["USD"])
                    prices[attributes["instanceName"]] = {"usd_per_hour": usd,
                                                          "source": attributes.get("smemuPriceSource", "")}
                token = answer.get("NextToken")
                if not token:
                    return prices, None
        except ServiceError as exc:
            return {}, exc.message

    @app.get("/signin")
    async def signin_page(request: Request, next: str = "/console/"):
        if access is None:
            return RedirectResponse("/console/")
        return templates.TemplateResponse(request, "signin.html", {"page": "signin", "next": _local(next),
                                                                   "error": None, "signed_in": None})

    @app.post("/signin")
    async def signin(request: Request):
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))  # an urlencoded form
        target = _local(str(form.get("next") or "/console/"))
        try:
            session = access.sign_in(str(form.get("access_key", "")).strip(), str(form.get("secret_key", "")),
                                     str(form.get("session_token", "")).strip() or None)
        except ServiceError as exc:
            return templates.TemplateResponse(request, "signin.html", {"page": "signin", "next": target,
                                              "error": exc.message, "signed_in": None}, status_code=403)
        answer = RedirectResponse(target, status_code=303)
        answer.set_cookie(access_cookie, session, httponly=True, samesite="strict", path="/")
        return answer

    @app.post("/signout")
    async def signout(request: Request):
        if access is not None:
            access.sign_out(request.cookies.get(access_cookie))
        answer = RedirectResponse("/console/signin", status_code=303)
        answer.delete_cookie(access_cookie, path="/")
        return answer

    def refused(exc: Exception) -> JSONResponse:
        if isinstance(exc, FieldError):
            return JSONResponse({"Field": exc.field, "Message": exc.message}, 400)
        if isinstance(exc, ServiceError):
            return JSONResponse({"Code": exc.code, "Message": exc.message}, exc.status)
        return JSONResponse({"Message": str(exc)}, 400)

    @app.get("/")
    async def home():
        return RedirectResponse("/console/models")

    @app.get("/models")
    async def models(request: Request):
        rows = []
        for summary in listing("ListModels", "Models", SortBy="CreationTime", SortOrder="Descending"):
            described = call("DescribeModel", {"ModelName": summary["ModelName"]})
            container = described.get("PrimaryContainer") or (described.get("Containers") or [{}])[0]
            rows.append({**summary, "Image": container.get("Image", ""), "ModelDataUrl": container.get("ModelDataUrl", "")})
        return page(request, "models.html", models=rows, recommendation=request.query_params.get("recommendation"),
                    warning=request.query_params.get("warning"), created=request.query_params.get("created"),
                    deleted=request.query_params.getlist("deleted"))

    @app.get("/models/create")
    async def create_model(request: Request):
        return page(request, "create_model.html", prebuilt=prebuilt_images(region), s3=s3_server(),
                    default_bucket=f"sagemaker-{region}-{account_id}",
                    upload=Uploads.new_id(), recommender=recommender, runtime=runtime.name, default_role=DEFAULT_ROLE,
                    packages=str(state_dir / "console" / "packages"))

    @app.get("/models/{name}")
    async def model(request: Request, name: str):  # after /models/create, which it would shadow
        try:
            described = call("DescribeModel", {"ModelName": name})
        except ServiceError as exc:
            return page(request, "missing.html", message=exc.message)
        containers = described.get("Containers") or [described.get("PrimaryContainer") or {}]
        tags = call("ListTags", {"ResourceArn": described["ModelArn"]}).get("Tags", [])
        return page(request, "model.html", model=described, containers=containers, tags=tags)

    @app.get("/deploy")
    async def deploy(request: Request):
        chosen = request.query_params.getlist("model")
        all_models = [m["ModelName"] for m in listing("ListModels", "Models", SortBy="Name", SortOrder="Ascending")]
        endpoints = []
        for summary in listing("ListEndpoints", "Endpoints", SortBy="Name", SortOrder="Ascending"):
            try:
                config = call("DescribeEndpointConfig", {"EndpointConfigName": call(
                    "DescribeEndpoint", {"EndpointName": summary["EndpointName"]})["EndpointConfigName"]})
            except ServiceError:
                continue
            if not any(v.get("ModelName") for v in config["ProductionVariants"]):  # components go only there
                endpoints.append(summary["EndpointName"])
        first = None
        if chosen:
            try:
                first = call("DescribeModel", {"ModelName": chosen[0]})
            except ServiceError:
                first = None
        types = sorted(catalog.types.values(), key=lambda t: (t.name.split(".")[1], t.vcpus, t.name))
        prices, prices_unavailable = instance_prices()  # estimates marked
        recommended = actions.recommended(chosen[0]) if chosen else []
        return page(request, "deploy.html", chosen=chosen, all_models=all_models, endpoints=endpoints,
                    instance_types=types, first=first or {}, recommender=recommender, recommended=recommended,
                    capture_default=capture_default, prices=prices, prices_unavailable=prices_unavailable)

    @app.get("/endpoints")
    async def endpoints(request: Request):
        rows = listing("ListEndpoints", "Endpoints", SortBy="CreationTime", SortOrder="Descending")
        return page(request, "endpoints.html", endpoints=rows, deleted=request.query_params.get("deleted"))

    @app.get("/endpoints/{name}")
    async def endpoint(request: Request, name: str):
        try:
            described = call("DescribeEndpoint", {"EndpointName": name})
        except ServiceError as exc:
            return page(request, "missing.html", message=exc.message)
        all_models = [m["ModelName"] for m in listing("ListModels", "Models", SortBy="Name", SortOrder="Ascending")]
        try:
            config = call("DescribeEndpointConfig", {"EndpointConfigName": described["EndpointConfigName"]})
        except ServiceError:
            config = {"ProductionVariants": []}
        model_endpoint = any(v.get("ModelName") for v in config["ProductionVariants"])  # takes no components
        return page(request, "endpoint.html", endpoint=described, all_models=all_models, capture_default=capture_default,
                    model_endpoint=model_endpoint, deployed=request.query_params.get("deployed"))

    @app.put("/api/uploads/{upload}/{slot}/{filename}")
    async def upload_file(request: Request, upload: str, slot: str, filename: str):
        try:
            size = await uploads.receive(upload, slot, filename, request.stream())
        except UploadError as exc:
            return JSONResponse({"Field": slot, "Message": str(exc)}, 400)
        return {"File": filename, "Bytes": size}

    @app.delete("/api/uploads/{upload}/{slot}")
    async def clear_slot(upload: str, slot: str):
        try:
            uploads.clear(upload, slot)
        except UploadError as exc:
            return JSONResponse({"Field": slot, "Message": str(exc)}, 400)
        return {}

    @app.get("/api/images")
    async def image_check(uri: str):
        """Whether this smemu can run the image (the Docker runtime: whether the engine has it)."""
        reason = runtime.check_image(uri)
        return {"Image": uri, "Runnable": reason is None, "Message": reason or f"The {runtime.name} runtime can run it."}

    def origin_of(request: Request) -> str:
        return request.headers.get("origin") or f"{request.url.scheme}://{request.headers.get('host', '')}"

    @app.post("/api/models")
    async def create(request: Request):
        try:
            return actions.create_model({**await request.json(), "Origin": origin_of(request)})
        except (FieldError, ServiceError) as exc:
            return refused(exc)

    @app.post("/api/presign")
    async def presign(request: Request):
        """A presigned PUT for the browser's upload to the bucket (Studio's way)."""
        try:
            credentials = access.upload_credentials() if access is not None else None
            return await asyncio.to_thread(browser_uploads.presign, await request.json(), origin_of(request),
                                           credentials)
        except (FieldError, ServiceError) as exc:
            return refused(exc)

    @app.post("/api/cors-advice")
    async def cors_advice(request: Request):
        bucket = (await request.json()).get("Bucket", "")
        return await asyncio.to_thread(browser_uploads.cors_advice, bucket, origin_of(request))

    @app.post("/api/compatibility")
    async def compatibility(request: Request):
        return {"Incompatible": actions.incompatibilities(await request.json())}

    @app.post("/api/deploy")
    async def deploy_models(request: Request):
        body = await request.json()
        try:
            return actions.deploy(body)
        except FieldError as exc:
            answer = {"Field": exc.field, "Message": exc.message}
            if exc.field == "Compatibility":
                answer["Incompatible"] = actions.incompatibilities(body)
            return JSONResponse(answer, 400)
        except ServiceError as exc:
            return refused(exc)

    @app.post("/api/endpoints/{name}/capture")
    async def switch_capture(request: Request, name: str):
        """Data capture on or off: a new endpoint config with the change, then UpdateEndpoint."""
        try:
            return capture.switch(name, await request.json())
        except (FieldError, ServiceError) as exc:
            return refused(exc)

    @app.get("/api/endpoints/{name}/captures")
    async def captured_files(name: str):
        try:
            return json.loads(json.dumps(capture.files(name), default=str))
        except ServiceError as exc:
            return refused(exc)

    @app.get("/api/endpoints/{name}/captures/records")
    async def captured_records(name: str, uri: str):
        try:
            return capture.records(name, uri)
        except (FieldError, ServiceError) as exc:
            return refused(exc)
        except Exception as exc:  # noqa: BLE001 — a file gone or a destination unreachable, shown on the page
            return JSONResponse({"Message": f"Could not read {uri}: {exc}"}, 404)

    @app.get("/api/endpoints/{name}/live")
    async def live(name: str, log_group: str = "", log_stream: str = "", log_token: str = ""):
        """Everything the endpoint page shows, in one request (the page polls it once a second)."""
        try:
            described = call("DescribeEndpoint", {"EndpointName": name})
        except ServiceError as exc:
            return refused(exc)
        components = []
        for summary in listing("ListInferenceComponents", "InferenceComponents", EndpointNameEquals=name,
                               SortBy="Name", SortOrder="Ascending"):
            try:
                components.append(call("DescribeInferenceComponent",
                                       {"InferenceComponentName": summary["InferenceComponentName"]}))
            except ServiceError:
                continue
        answer = {"Endpoint": described, "InferenceComponents": components,
                  "Placement": placement(reconciler, registry, name), "Metrics": metrics.totals(name),
                  "Deployments": deployments(reconciler.store, registry, name)}
        if log_group and log_stream:
            params = {"logGroupName": log_group, "logStreamName": log_stream, "startFromHead": True,
                      "limit": LIVE_LOG_EVENTS}
            if log_token:
                params["nextToken"] = log_token
            try:
                if access is not None:
                    access.authorize("logs", "GetLogEvents", params, region)
                answer["Log"] = logs.call("GetLogEvents", params, region)
            except ServiceError as exc:
                answer["Log"] = {"Error": exc.message}
        return json.loads(json.dumps(answer, default=str))

    return app


access_cookie = "smemu_console"  # api/consoleauth.py's COOKIE (the console imports nothing of api/)


def _local(target: str) -> str:
    """Where to go after signing in: a console path only, never another site."""
    return target if target.startswith("/console") and "//" not in target else "/console/"


def local_time(value) -> str:
    """An API timestamp (epoch seconds, ISO text or datetime) as this machine's local date and time."""
    if value in (None, ""):
        return ""
    if isinstance(value, (int, float)):
        moment = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    elif isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    else:
        try:
            moment = datetime.datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
