#!/bin/sh
# Validates the Kubernetes manifests against the API schemas (kubernetes-validate, from PyPI:
# pip install kubernetes-validate). helm-values.yaml and prometheus-scrape-config.yaml are not
# Kubernetes objects and are only checked to be YAML.
set -eu
cd "$(dirname "$0")"
kubernetes-validate --strict \
    sidecar/metric-gate-config.yaml \
    sidecar/ingress-nginx-controller.yaml \
    aggregator/metric-gate-aggregator.yaml
python3 -c 'import sys, yaml; [yaml.safe_load(open(f)) for f in sys.argv[1:]]' \
    sidecar/helm-values.yaml sidecar/prometheus-scrape-config.yaml
