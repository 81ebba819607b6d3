"""The services' texts that smemu reproduces (SageMaker's errors, and Application Auto Scaling's,
CloudWatch's and CloudWatch Logs' that users' code and eyes meet), and where each comes from.

Sources: [O] seen from the real service (users' pasted errors in public issues, AWS blog posts);
[O-part] the observed part is marked, the rest of the sentence is smemu's; [S] smemu's own text,
where no real capture was found (its wording follows SageMaker's neighbouring texts). Imports
nothing, so every layer may use it.
"""
from __future__ import annotations

TEXTS = {
    # -- control plane (ValidationException, HTTP 400) --------------------------------------------------
    "not-found": ('Could not find {kind} "{arn}".',
                  "[O] prefix 'Could not find endpoint' matched by AWS's Kubernetes operator; full texts in many "
                  "reports (e.g. aws/amazon-sagemaker-examples issues)"),
    "already-exists": ('Cannot create already existing {kind} "{arn}".', "[O] endpoint and endpoint-config reports"),
    "endpoint-in-progress": ('Cannot update in-progress endpoint "{arn}".',
                             "[O] returned by UpdateEndpoint, UpdateEndpointWeightsAndCapacities and DeleteEndpoint"),
    "component-update-in-state": ('Cannot update inference component "{arn}" while it is in state {state}.',
                                  "[O-part] the states CREATE_IN_PROGRESS, UPDATE_RC_IN_PROGRESS, DELETE_IN_PROGRESS "
                                  "are observed in SageMaker's messages; the sentence is smemu's"),
    "component-delete-in-state": ('Cannot delete inference component "{arn}" while it is in state {state}.',
                                  "[O-part] as component-update-in-state"),
    "component-is-base": ('Inference component "{arn}" is a base inference component for one or more associated '
                          'inference components: {names}.', "[O-part] 'is a base inference component for one or "
                                                             "more associated' observed"),
    "not-enough-hardware": ("There is not enough hardware resources on the instances for this endpoint to create a "
                            "copy of the inference component.", "[O]"),
    "quota": ("The account-level service limit '{quota}' is {limit} {unit}, with current utilization of {used} {unit} "
              "and a request delta of {delta} {unit}. Please contact AWS support to request an increase for this "
              "limit.", "[O] 'ml.m5.large for endpoint usage': aws-samples/sagemaker-custom-project-templates#51, "
                        "aws/amazon-sagemaker-examples#307; other quota names are smemu's"),
    "missing-model-data": ("Could not find model data at {uri}.",
                           "[O] CreateModel with a missing S3 object: aws-ia/ecs-blueprints#223"),
    "model-data-inaccessible": ('Could not access model data at {uri}. Please ensure that the role "{role}" exists and '
                                'that its trust relationship policy allows the action "sts:AssumeRole" for the '
                                'service principal "sagemaker.amazonaws.com". Also ensure that the role has '
                                '"s3:GetObject" permissions and that the object is located in {region}.',
                                "[O] CreateModel with model data in another region's bucket, quoted in public "
                                "issues and workshop notes (e.g. aws/sagemaker-python-sdk reports)"),
    "model-data-list-bucket": ('If your Model uses multiple models or uncompressed models, please ensure that the role '
                               'has "s3:ListBucket" permission.', "[O] the sentence that follows model-data-inaccessible"),
    # -- runtime ------------------------------------------------------------------------------------------
    "endpoint-not-found": ("Endpoint {name} of account {account} not found.", "[O] many reports"),
    "component-header-required": ("Inference Component Name header is required for endpoints to which you plan to "
                                  "deploy inference components. Please include Inference Component Name header or "
                                  "consider using SageMaker models.", "[O]"),
    "component-header-not-allowed": ("Inference Component Name header is not allowed for endpoints to which you dont "
                                     "plan to deploy inference components. Please remove the Inference Component Name "
                                     "header and try again.", "[O]"),
    "no-capacity": ("Inference Component has no capacity to process this request. ApplicationAutoScaling may be "
                    "in-progress (if configured) or try to increase the capacity by invoking "
                    "UpdateInferenceComponentRuntimeConfig API.", "[O] AWS ML blog on scale to zero"),
    "not-multi-model": ("Endpoint {name} is not a multi-model endpoint and does not support target model header.",
                        "[O] aws/amazon-sagemaker-examples#1026 and #1216 (ErrorCode TARGET_MODEL_HEADER_NOT_SUPPORTED)"),
    "missing-target-model": ("Request {request_id} is missing a target model header.",
                             "[O] aws/sagemaker-tensorflow-serving-container#166"),
    "oversize-body": ("Request {request_id} has oversize body.", "[O] serverless endpoints"),
    "model-error": ('Received {kind} error ({status}) from {container} with message "{text}". See the log group '
                    "{log_group} (smemu logs {endpoint}) in account {account} for more information.",
                    "[O-part] SageMaker's sentence; its CloudWatch console URL is replaced by smemu's log command"),
    "invocation-timeout": ("Your invocation timed out while waiting for a response from container {container}. "
                           "Review the latency metrics for each container in Amazon CloudWatch, resolve the issue, and "
                           "try again.", "[O]"),
    "component-not-found": ("Inference component {component} does not exist on endpoint {endpoint}.", "[S]"),
    "variant-not-found": ("The variant {variant} does not exist on endpoint {endpoint}.", "[S]"),
    # -- Application Auto Scaling -------------------------------------------------------------------------
    "aas-no-target": ("No scalable target registered for service namespace: {namespace}, resource ID: {resource}, "
                      "scalable dimension: {dimension}", "[O] ObjectNotFoundException of PutScalingPolicy "
                                                         "(ansible/ansible#35632)"),
    "aas-target-not-found": ("No scalable target found for service namespace: {namespace}, resource ID: {resource}, "
                             "scalable dimension: {dimension}", "[S] after aas-no-target"),
    "aas-policy-not-found": ("No scaling policy found for service namespace: {namespace}, resource ID: {resource}, "
                             "scalable dimension: {dimension}, policy name: {policy}", "[S] after aas-no-target"),
    "aas-unsupported": ("Unsupported service namespace, resource type or scalable dimension",
                        "[O] as peers quote it (getmoto/moto)"),
    "aas-activity": ("Setting desired {unit} to {capacity}.", "[O] 'Setting desired instance count to 48.'; the copy "
                                                              "count form is smemu's"),
    "aas-activity-done": ("Successfully set desired {unit} to {capacity}. Change successfully fulfilled by sagemaker.",
                          "[O] instance count form seen in a real activity; copy count by analogy"),
    "aas-alarm-cause": ("monitor alarm {alarm} in state ALARM triggered policy {policy}", "[O]"),
    # -- CloudWatch and CloudWatch Logs ------------------------------------------------------------------
    "cw-start-after-end": ("The parameter StartTime must be less than the parameter EndTime.", "[O]"),
    "cw-too-many-points": ("You have requested up to {count:,} datapoints, which exceeds the limit of 1,440. You may "
                           "reduce the datapoints requested by increasing Period, or decreasing the time range.", "[O]"),
    "cw-initial-reason": ("Unchecked: Initial alarm creation", "[O] as peers quote it (getmoto/moto)"),
    "logs-not-found": ("The specified log {what} does not exist.", "[O] log group and log stream"),
}


def text(key: str, **values) -> str:
    return TEXTS[key][0].format(**values)
