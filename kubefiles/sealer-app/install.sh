#!/bin/sh
# Run by APPCMDS: apply the app's manifests.
kubectl apply -f "$(dirname "$0")/config.yaml"
