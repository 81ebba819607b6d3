"""Default decoders and encoders of the SageMaker inference toolkit (JSON, CSV, NPY)."""
from __future__ import annotations

import io
import json

import numpy as np

from .errors import UnsupportedFormatError

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
NPZ = "application/x-npz"


def decode(data, content_type):
    """Decode a request body by its exact content type (parameters defeat the match, as upstream)."""
    if content_type == JSON:
        return np.array(json.loads(data))
    if content_type == CSV:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        return np.genfromtxt(io.StringIO(text), delimiter=",")
    if content_type == NPY:
        # allow_pickle=False: a pickled array is code execution (the XGBoost image patches this too).
        return np.load(io.BytesIO(bytes(data)), allow_pickle=False)
    if content_type == NPZ:
        try:
            import scipy.sparse
        except ImportError as exc:  # the toolkit needs scipy for this decoder
            raise UnsupportedFormatError(content_type) from exc
        return scipy.sparse.load_npz(io.BytesIO(bytes(data)))
    raise UnsupportedFormatError(content_type)


def _to_list(obj):
    return obj.tolist() if hasattr(obj, "tolist") else obj


def encode_as(obj, content_type):
    if content_type == JSON:
        return json.dumps(obj, default=_to_list)
    if content_type == CSV:
        buffer = io.StringIO()
        np.savetxt(buffer, np.asarray(obj), delimiter=",", fmt="%s")
        return buffer.getvalue()
    if content_type == NPY:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(obj))
        return buffer.getvalue()
    raise UnsupportedFormatError(content_type)


def first_supported(accept: str, supported=(JSON, CSV, NPY)):
    """Walk an Accept list the way the toolkit does: first supported type wins, no q-values."""
    for candidate in accept.replace(" ", "").split(","):
        if candidate in supported:
            return candidate
    raise UnsupportedFormatError(accept)


def encode(obj, accept):
    content_type = first_supported(accept)
    return encode_as(obj, content_type), content_type
