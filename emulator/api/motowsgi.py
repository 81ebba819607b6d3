"""Running moto's service apps (WSGI) behind smemu's ASGI listener: the environ of a request, and one call."""
from __future__ import annotations

import io
import sys


def wsgi_environ(scope, body) -> dict:
    """The WSGI environ of an ASGI request whose body is in the file ``body``."""
    from moto.core.request import (PRESERVED_HEADER_NAMES_ENVIRON_KEY, environ_key_for_header,
                                   should_preserve_original_header_name)

    server = scope.get("server") or ("127.0.0.1", 80)
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "RAW_URI": raw_path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else ""),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    environ["REQUEST_URI"] = environ["RAW_URI"]
    preserved = {}
    for key, value in scope["headers"]:
        name, text = key.decode("latin-1"), value.decode("latin-1")
        if name == "x-moto-account-id":
            continue  # one account: smemu's
        environ_key = environ_key_for_header(name)
        if should_preserve_original_header_name(name):
            preserved.setdefault(environ_key, name)
        environ[environ_key] = f"{environ[environ_key]},{text}" if environ_key in environ else text
    environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = preserved
    if "CONTENT_LENGTH" not in environ:
        environ["CONTENT_LENGTH"] = str(body.seek(0, io.SEEK_END))
        body.seek(0)
    return environ


def run_wsgi(app, environ) -> dict:
    """{"status": int, "headers": [(name, value)], "payload": bytes} of one call (moto answers whole bodies)."""
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split(" ", 1)[0]), headers

    result = app(environ, start_response)
    try:
        answer["payload"] = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    return answer
