#!/usr/bin/env bash
# The whole hosting lifecycle with the AWS CLI against smemu: model, endpoint config, endpoint,
# wait, invoke, delete. Needs a running smemu (make run) and the AWS CLI (pip install awscli).
#   SMEMU_URL=http://127.0.0.1:7070 MODEL_TARBALL=/path/model.tar.gz examples/aws_cli_walkthrough.sh
set -euo pipefail
URL=${SMEMU_URL:-http://127.0.0.1:7070}
MODEL=${MODEL_TARBALL:?set MODEL_TARBALL to an XGBoost model.tar.gz}
NAME=${EXAMPLE_NAME:-cli-example}
IMAGE=683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-local} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-local}
sm() { aws sagemaker --endpoint-url "$URL" "$@"; }

# What an interrupted earlier run may have left: gone first, so the walkthrough runs again.
if sm describe-endpoint --endpoint-name "$NAME" >/dev/null 2>&1; then
  sm delete-endpoint --endpoint-name "$NAME"
  until ! sm describe-endpoint --endpoint-name "$NAME" >/dev/null 2>&1; do sleep 0.2; done
fi
sm delete-endpoint-config --endpoint-config-name "$NAME" >/dev/null 2>&1 || true
sm delete-model --model-name "$NAME" >/dev/null 2>&1 || true

sm create-model --model-name "$NAME" \
  --primary-container "Image=$IMAGE,ModelDataUrl=file://$MODEL"
sm create-endpoint-config --endpoint-config-name "$NAME" \
  --production-variants "VariantName=AllTraffic,ModelName=$NAME,InstanceType=ml.m5.large,InitialInstanceCount=1"
sm create-endpoint --endpoint-name "$NAME" --endpoint-config-name "$NAME"
# The CLI's waiter polls every 30 s; smemu is usually in service in well under a second.
until [ "$(sm describe-endpoint --endpoint-name "$NAME" --query EndpointStatus --output text)" != Creating ]; do sleep 0.2; done
sm wait endpoint-in-service --endpoint-name "$NAME"

printf '0,0,1\n1,0,0' > /tmp/$NAME-input.csv
aws sagemaker-runtime invoke-endpoint --endpoint-url "$URL" --endpoint-name "$NAME" \
  --content-type text/csv --body fileb:///tmp/$NAME-input.csv /tmp/$NAME-output.txt
echo "predictions:"; cat /tmp/$NAME-output.txt

sm delete-endpoint --endpoint-name "$NAME"
until ! sm describe-endpoint --endpoint-name "$NAME" >/dev/null 2>&1; do sleep 0.2; done
sm wait endpoint-deleted --endpoint-name "$NAME"
sm delete-endpoint-config --endpoint-config-name "$NAME"
sm delete-model --model-name "$NAME"
echo done
