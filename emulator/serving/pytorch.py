"""PyTorch defaults, as the SageMaker PyTorch inference toolkit's DefaultPytorchInferenceHandler."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import codecs
from .errors import ModelLoadError
from .handler import ToolkitHandler, ToolkitPolicy


def _torch():
    import torch

    return torch


def _device():
    torch = _torch()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_model_fn(model_dir):
    torch = _torch()
    model_dir = Path(model_dir)
    path = model_dir / "model.pt"
    if not path.is_file():
        candidates = sorted(p for p in model_dir.iterdir() if p.is_file() and p.suffix in (".pt", ".pth"))
        if len(candidates) != 1:
            raise ValueError(
                f"Exactly one .pth or .pt file is required for PyTorch models: {[p.name for p in candidates]}"
            )
        path = candidates[0]
    try:
        model = torch.jit.load(str(path), map_location=_device())
    except Exception as exc:
        raise ModelLoadError(f"Failed to load {path}. Please ensure model is saved using torchscript.") from exc
    return model.to(_device())


def default_input_fn(input_data, content_type):
    torch = _torch()
    array = codecs.decode(input_data, content_type)
    if content_type in (codecs.JSON, codecs.CSV):
        tensor = torch.FloatTensor(array)
    else:
        tensor = torch.from_numpy(array)  # NPY keeps its dtype, as upstream
    return tensor.to(_device())


def default_predict_fn(data, model):
    torch = _torch()
    with torch.no_grad():
        device = _device()
        model = model.to(device)
        model.eval()
        return model(data.to(device))


def default_output_fn(prediction, accept):
    torch = _torch()
    if isinstance(prediction, torch.Tensor):
        prediction = prediction.detach().cpu().numpy().tolist()
    for content_type in accept.replace(" ", "").split(","):
        if content_type == codecs.JSON:
            return codecs.encode_as(prediction, codecs.JSON)
        if content_type == codecs.CSV:
            return codecs.encode_as(prediction, codecs.CSV).encode("utf-8")
        if content_type == codecs.NPY:
            return codecs.encode_as(np.asarray(prediction), codecs.NPY)
    # Returning the body alone makes the response Content-Type the Accept string, as upstream.
    raise codecs.UnsupportedFormatError(accept)


DEFAULTS = {
    "model_fn": default_model_fn,
    "input_fn": default_input_fn,
    "predict_fn": default_predict_fn,
    "output_fn": default_output_fn,
}


def make_handler(env) -> ToolkitHandler:
    policy = ToolkitPolicy(default_accept=env.default_accept or codecs.JSON)
    return ToolkitHandler(env.model_dir, env.module_name, DEFAULTS, policy, ping_body=b'{"status": "Healthy"}',
                          module_alias=env.module_alias)
