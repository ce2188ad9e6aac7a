#!/bin/sh
# Validates the manifests of deploy/:
# - Kubernetes objects against the API schemas (kubernetes-validate, from PyPI:
#   pip install kubernetes-validate);
# - Prometheus Operator objects (PodMonitor, ServiceMonitor), which that validator does not
#   know, against the operator's CRD schemas (scripts/check_operator_manifests.py, which says
#   which PyPI package to install);
# - helm-values.yaml and the prometheus-scrape-config.yaml files, which are not Kubernetes
#   objects, are only checked to be YAML.
# tests/deploy_examples.rs checks what the relabel configs and scrape jobs do.
set -eu
cd "$(dirname "$0")"
kubernetes-validate --strict \
    sidecar/metric-gate-config.yaml \
    sidecar/ingress-nginx-controller.yaml \
    aggregator/metric-gate-aggregator.yaml
python3 ../scripts/check_operator_manifests.py \
    sidecar/podmonitor.yaml \
    aggregator/servicemonitor.yaml
python3 -c 'import sys, yaml; [list(yaml.safe_load_all(open(f))) for f in sys.argv[1:]]' \
    sidecar/helm-values.yaml \
    sidecar/prometheus-scrape-config.yaml \
    aggregator/prometheus-scrape-config.yaml
