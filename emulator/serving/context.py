"""A request context shaped like TorchServe's ``ts.context.Context``.

Handlers that declare one extra parameter receive it, and can read request headers and set
response headers, content type and status through the same calls as on SageMaker.
"""
from __future__ import annotations


class RequestProcessor:
    def __init__(self, headers: dict):
        self._headers = headers
        self.response_headers: dict = {}
        self.status_code: int | None = None
        self.reason_phrase: str | None = None

    def get_request_property(self, key):
        return self._headers.get(key, self._headers.get(key.lower()))

    def get_request_properties(self):
        return dict(self._headers)

    def add_response_property(self, key, value):
        self.response_headers[key] = value

    def get_response_headers(self):
        return dict(self.response_headers)

    def get_response_status(self):
        return self.status_code

    def report_status(self, code, reason_phrase=None):
        self.status_code = code
        self.reason_phrase = reason_phrase


class Context:
    def __init__(self, model_name: str, model_dir: str, gpu_id=None):
        self.model_name = model_name
        self.manifest = {"model": {"modelName": model_name}}
        self.system_properties = {
            "model_dir": model_dir,
            "gpu_id": gpu_id,
            "batch_size": 1,
            "server_name": "smemu",
            "server_version": "1",
        }
        self.request_ids = {0: None}
        self.request_processor = [RequestProcessor({})]

    def start_request(self, headers: dict, request_id=None):
        self.request_ids = {0: request_id}
        self.request_processor = [RequestProcessor(headers)]

    def get_request_id(self, idx=0):
        return self.request_ids.get(idx)

    def get_request_header(self, idx, key):
        return self.request_processor[idx].get_request_property(key)

    def get_all_request_header(self, idx):
        return self.request_processor[idx].get_request_properties()

    def set_response_content_type(self, idx, value):
        self.set_response_header(idx, "Content-Type", value)

    def get_response_content_type(self, idx):
        return self.get_response_headers(idx).get("Content-Type")

    def get_response_headers(self, idx):
        return self.request_processor[idx].get_response_headers()

    def set_response_header(self, idx, key, value):
        self.request_processor[idx].add_response_property(key, value)

    def set_response_status(self, code=200, phrase="", idx=0):
        self.request_processor[idx].report_status(code, phrase)
