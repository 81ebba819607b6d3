"""Exceptions that carry an HTTP status, as in the SageMaker inference toolkit."""


class InferenceError(Exception):
    """An error whose status code reaches the client (the toolkit's BaseInferenceToolkitError)."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class UnsupportedFormatError(Exception):
    """A content type or accept the default (de)serialisers cannot handle.

    Deliberately not an InferenceError: the PyTorch toolkit turns it into a 500, not a 415.
    """

    def __init__(self, content_type):
        super().__init__(
            f"Content type {content_type} is not supported by this framework.\n\n"
            "            Please implement input_fn to to deserialize the request data or an output_fn to\n"
            "            serialize the response. For more information, see the SageMaker Python SDK README."
        )
        self.content_type = content_type


class ModelLoadError(Exception):
    """The model could not be loaded; /ping and /invocations report it."""
