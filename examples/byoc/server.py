"""A tiny model server: the "model" is a JSON file of word weights in /opt/ml/model.

POST /invocations with a text body returns {"score": ..., "network": ...}: the sum of the weights
of the words it knows, and what network this container sees (interfaces and routes), which lets
smemu's tests show that EnableNetworkIsolation leaves it no way out.
"""
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_DIR = "/opt/ml/model"


def load_weights():
    path = os.path.join(MODEL_DIR, "weights.json")
    with open(path) as handle:
        return json.load(handle)


def network_view():
    with open("/proc/net/dev") as handle:
        interfaces = [line.split(":")[0].strip() for line in handle.read().splitlines()[2:]]
    with open("/proc/net/route") as handle:
        routes = len(handle.read().splitlines()) - 1
    return {"interfaces": sorted(interfaces), "routes": routes}


WEIGHTS = load_weights()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _reply(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/ping":
            self._reply(200, "")
        else:
            self._reply(404, "{}")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        text = self.rfile.read(length).decode()
        if self.path != "/invocations":
            self._reply(404, "{}")
            return
        score = sum(WEIGHTS.get(word, 0.0) for word in text.lower().split())
        self._reply(200, json.dumps({"score": score, "network": network_view()}))

    def log_message(self, *args):
        pass


def stop(signum, frame):
    # As PID 1 in its container, the server gets no default SIGTERM handling: without this, stopping
    # the container waits out the whole grace period before SIGKILL.
    print("byoc server: SIGTERM, stopping", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop)
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    print(f"byoc server: listening on port {port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
