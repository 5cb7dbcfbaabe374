#!/bin/sh
# deploy_microservice (DAY-2): deploys an existing service. Unknown environments fail with
# exit code 3, which Port shows as FAILURE "exit code 3".
set -eu
echo "Deploying ${SERVICE_NAME} to ${ENVIRONMENT}"
case "$ENVIRONMENT" in
  production|staging|development) ;;
  *)
    echo "error: unknown environment '${ENVIRONMENT}' (want production, staging or development)" >&2
    exit 3
    ;;
esac
echo "  image: registry.example.com/${SERVICE_NAME}:latest"
echo "  rollout: 3/3 replicas ready"
echo "::port-summary::${SERVICE_NAME} is live in ${ENVIRONMENT}"
echo "Deployed."
