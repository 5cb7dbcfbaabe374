#!/bin/sh
# build_image (workflow node "build-image"): its outputs go back to the workflow.
set -eu
image="registry.example.com/${SERVICE_NAME}:${VERSION}"
echo "Building ${image}"
echo "  layers: 7, size: 48MiB"
echo "::port-output::image=${image}"
printf '{"digest":"sha256:4f1c0a9e","sizeBytes":50331648}' > "$PORT_OUTPUT_FILE"
echo "Pushed."
