"""Reading the deploy files (deploy/) as data, for the tests that check them without a Docker engine."""

import dataclasses
import re
from pathlib import Path

import yaml  # kubernetes-validate's and pre-commit's dependency

from service.config import Settings

REPO = Path(__file__).resolve().parent.parent.parent
DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.30.0"  # the oldest release still supported upstream when these files were written
OWNER_URL = "GATEHOUSE_DATABASE_OWNER_URL"

_SETTING = re.compile(r"\bGATEHOUSE_[A-Z0-9_]+\b")


def settings_names() -> set[str]:
    """Every GATEHOUSE_* variable service/config.py reads: one per Settings field, and the TOML file's name."""
    return {"GATEHOUSE_" + f.name.upper() for f in dataclasses.fields(Settings)} | {"GATEHOUSE_CONFIG"}


def gatehouse_names(text: str) -> set[str]:
    """The GATEHOUSE_* names a text mentions."""
    return set(_SETTING.findall(text))


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def manifests() -> list[dict]:
    """Every Kubernetes object under deploy/kubernetes/, in file order."""
    docs = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def objects(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in manifests() if d["kind"] == kind}


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container_env(container: dict, configmaps: dict[str, dict]) -> dict[str, object]:
    """A container's environment: its env entries (value, or where valueFrom points) over its envFrom ConfigMaps."""
    env: dict[str, object] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
        else:
            env[f"secret:{source['secretRef']['name']}"] = source
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "configMapKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = configmaps[ref["name"]]["data"][ref["key"]]
        else:
            env[item["name"]] = item["valueFrom"]
    return env


def secrets_used(spec: dict) -> set[str]:
    """Names of the Secrets a pod spec can read: through env, envFrom or a volume."""
    names = {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
    for container in spec["containers"] + spec.get("initContainers", []):
        names |= {s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s}
        names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", [])
                  if "secretKeyRef" in e.get("valueFrom", {})}
    return names
