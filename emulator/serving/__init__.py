"""The in-container serving toolkit: SageMaker's hosting contract in pure Python.

It answers ``GET /ping`` and ``POST /invocations`` on ``SAGEMAKER_BIND_TO_PORT`` (8080 by default),
loads the model from ``SM_MODEL_DIR`` / ``$SAGEMAKER_BASE_DIR/model`` and follows the inference
handler convention (``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``, ``transform_fn``).
The same code runs inside the Docker images and as subprocesses of the process runtime, so this
package imports nothing else of the emulator.
"""
