"""The data plane: routes InvokeEndpoint to a serving copy and maps its answer to SageMaker's."""
