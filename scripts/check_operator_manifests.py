#!/usr/bin/env python3
"""Checks Prometheus Operator objects (`monitoring.coreos.com/*`: ServiceMonitor, PodMonitor,
...) in deploy/ against the operator's CRD schemas, which the Kubernetes schema validator of
deploy/validate.sh does not know.

The schemas come from PyPI: `cloudcoil-models-prometheus-operator` (pydantic models generated
from the operator's CRDs; 0.80.1.0 = prometheus-operator v0.80.1):

    python3 -m pip install 'cloudcoil-models-prometheus-operator==0.80.1.0'

Each object is validated by its model (types, enums such as relabel `action`, duration patterns
such as `interval`), and every key must be a field the CRD defines: the API server rejects
unknown fields under strict validation, and silently prunes them otherwise, which hides typos
(`honorLabel: true` would do nothing).

  scripts/check_operator_manifests.py [FILE.yaml ...]   # default: every deploy/**/*.yaml
  scripts/check_operator_manifests.py --self-test

Exit status: 0 valid, 1 invalid (or no operator object found), 3 the schema package is missing.
"""

import importlib
import inspect
import sys
import typing
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "cloudcoil-models-prometheus-operator==0.80.1.0"
GROUP = "monitoring.coreos.com/"


def load_models():
    try:
        import pydantic

        return pydantic, importlib.import_module("cloudcoil.models.prometheus_operator")
    except ImportError as e:
        print(f"check_operator_manifests: the CRD schema package is missing ({e}); install it:")
        print(f"  python3 -m pip install '{PACKAGE}'")
        sys.exit(3)


def unknown_keys(pydantic, annotation, value, path, errors):
    """Appends an error for every key of `value` that the model `annotation` does not define,
    recursing through nested models, lists, maps, Optional/Union and Annotated."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        unknown_keys(pydantic, args[0], value, path, errors)
    elif origin is typing.Union:
        for arg in args:
            if matches(pydantic, arg, value):
                unknown_keys(pydantic, arg, value, path, errors)
                break
    elif origin is list and isinstance(value, list) and args:
        for i, item in enumerate(value):
            unknown_keys(pydantic, args[0], item, f"{path}[{i}]", errors)
    elif origin is dict and isinstance(value, dict) and len(args) == 2:
        for k, item in value.items():
            unknown_keys(pydantic, args[1], item, f"{path}.{k}", errors)
    elif (
        inspect.isclass(annotation)
        and issubclass(annotation, pydantic.BaseModel)
        and not issubclass(annotation, pydantic.RootModel)
        and isinstance(value, dict)
    ):
        # The wire name is the alias (camelCase); the models also accept their Python names,
        # which the API server would not.
        fields = {(f.alias or name): f.annotation for name, f in annotation.model_fields.items()}
        for key, item in value.items():
            if key not in fields:
                known = ", ".join(sorted(fields))
                errors.append(f"{path}.{key}: unknown field of {annotation.__name__} ({known})")
            else:
                unknown_keys(pydantic, fields[key], item, f"{path}.{key}", errors)


def matches(pydantic, annotation, value):
    """Whether a Union member fits the shape of `value` (a model for a map, a list for a list)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return matches(pydantic, typing.get_args(annotation)[0], value)
    if isinstance(value, dict):
        return origin is dict or (
            inspect.isclass(annotation) and issubclass(annotation, pydantic.BaseModel)
        )
    if isinstance(value, list):
        return origin is list
    return False


def check_object(pydantic, package, doc, where):
    api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
    version = api_version[len(GROUP):]
    try:
        module = importlib.import_module(f"{package.__name__}.{version}")
    except ImportError:
        return [f"{where}: no schema for apiVersion {api_version!r}"]
    model = getattr(module, kind, None)
    if model is None or not hasattr(model, "model_validate"):
        return [f"{where}: no schema for kind {kind!r} in {api_version}"]
    errors = []
    unknown_keys(pydantic, model, doc, kind, errors)
    try:
        model.model_validate(doc)
    except pydantic.ValidationError as e:
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            errors.append(f"{kind}.{loc}: {err['msg']}")
    return [f"{where}: {e}" for e in errors]


def check_files(paths):
    pydantic, package = load_models()
    errors, checked = [], []
    for path in paths:
        for i, doc in enumerate(yaml.safe_load_all(Path(path).read_text())):
            if not isinstance(doc, dict) or not str(doc.get("apiVersion", "")).startswith(GROUP):
                continue
            name = (doc.get("metadata") or {}).get("name", f"document {i + 1}")
            shown = Path(path).resolve()
            shown = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else Path(path)
            where = f"{shown}: {doc.get('kind')} {name}"
            checked.append(where)
            errors += check_object(pydantic, package, doc, where)
    return checked, errors


def self_test():
    import tempfile

    bad = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "x", "labelz": {}},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "podMetricsEndpoints": [
                {
                    "port": "web",
                    "honorLabel": True,
                    "honorLabels": "maybe",
                    "interval": "30 seconds",
                    "relabelings": [{"action": "sum", "targetLabel": "job"}],
                }
            ],
        },
    }
    good = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "y", "labels": {"a": "b"}},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
        },
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump_all([bad, {"apiVersion": "v1", "kind": "Service"}, good], f)
    checked, errors = check_files([f.name])
    Path(f.name).unlink()
    assert len(checked) == 2, checked
    text = "\n".join(errors)
    for want in [
        "metadata.labelz: unknown field",
        "podMetricsEndpoints[0].honorLabel: unknown field",
        "honorLabels: Input should be a valid boolean",
        "interval: String should match pattern",
        "relabelings.0.action: Input should be",
    ]:
        assert want in text, f"missing {want!r} in:\n{text}"
    assert not any("ServiceMonitor" in e for e in errors), text
    print("check_operator_manifests self-test: ok")


def main(argv):
    if argv[1:] == ["--self-test"]:
        self_test()
        return 0
    paths = argv[1:] or sorted(str(p) for p in (ROOT / "deploy").rglob("*.yaml"))
    checked, errors = check_files(paths)
    for where in checked:
        print(f"check_operator_manifests: checked {where}")
    for e in errors:
        print(f"check_operator_manifests: ERROR: {e}")
    if not checked:
        print("check_operator_manifests: ERROR: no monitoring.coreos.com object found")
        return 1
    if errors:
        return 1
    print(f"check_operator_manifests: ok ({len(checked)} objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
