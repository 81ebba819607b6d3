"""The wire protocols: SageMaker's awsJson1_1 control plane and the restJson1 runtime."""
