#!/bin/sh
# create_microservice (CREATE): scaffolds a service. Reads its inputs from the env the agent
# fills from the run context; $PORT_RUN_FILE holds the whole context as JSON.
set -eu
echo "Creating microservice ${SERVICE_NAME} in ${REGION}"
echo "::port-status-label::Scaffolding ${SERVICE_NAME}"
echo "run context: $(wc -c < "$PORT_RUN_FILE") bytes in \$PORT_RUN_FILE"
for step in repository pipeline "catalog entry"; do
  echo "  created ${step}"
done
echo "warning: no owners team given; defaulting to platform" >&2
echo "::port-link::https://git.example.com/${SERVICE_NAME}"
echo "::port-status-label::Created ${SERVICE_NAME}"
echo "Done."
