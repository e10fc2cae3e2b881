"""deploy/kubernetes/: core kinds valid for Kubernetes (kubernetes-validate), the CloudNativePG objects valid against
the subset schema kept here, and the promises the manifests make: replicas, probes, who holds the owner's password."""

import copy
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from service.db.pool import role_of
from tests.support.deploy import (
    KUBERNETES_VERSION,
    OWNER_URL,
    container_env,
    manifests,
    objects,
    pod_spec,
    secrets_used,
)

CNPG_SCHEMA = json.loads((Path(__file__).with_name("cloudnative-pg.subset.schema.json")).read_text())
CNPG = "postgresql.cnpg.io/v1"


def validate(doc: dict) -> None:
    """Raise unless doc is valid: CloudNativePG kinds against our subset schema, the rest as Kubernetes does."""
    if doc["apiVersion"] == CNPG:
        jsonschema.Draft202012Validator(CNPG_SCHEMA).validate(doc)
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_manifest_is_valid_for_kubernetes_or_cloudnative_pg():
    docs = manifests()
    for doc in docs:
        validate(doc)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(["Cluster", "ScheduledBackup", "ConfigMap", "Deployment", "Deployment",
                            "PodDisruptionBudget", "Service", "Job"] + ["Secret"] * 5)


@pytest.mark.parametrize("break_it", [
    lambda d: d["spec"]["template"]["spec"]["containers"][0].update(readinessProbe={"httpGet": {"path": "/readyz"}}),
    lambda d: d["spec"].update(replica=2),
    lambda d: d["spec"]["template"]["spec"]["containers"][0].update(args="serve"),
], ids=["probe without port", "misspelt field", "args not a list"])
def test_kubernetes_validation_refuses_a_broken_deployment(break_it):
    web = copy.deepcopy(objects("Deployment")["gatehouse-web"])
    break_it(web)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(web)


@pytest.mark.parametrize("break_it", [
    lambda c: c["spec"].update(instances=0),
    lambda c: c["spec"]["bootstrap"]["initdb"].update(ownr="x"),
    lambda c: c["spec"]["storage"].update(size="lots"),
    lambda c: c["spec"]["managed"]["roles"][0].update(ensure="maybe"),
    lambda c: c["spec"]["backup"]["barmanObjectStore"].pop("destinationPath"),
    lambda c: c["spec"].pop("storage"),
], ids=["no instances", "misspelt field", "bad quantity", "bad ensure", "no destination", "no storage"])
def test_the_cloudnative_pg_schema_refuses_a_broken_cluster(break_it):
    cluster = copy.deepcopy(objects("Cluster")["gatehouse-db"])
    break_it(cluster)
    with pytest.raises(jsonschema.ValidationError):
        validate(cluster)


def test_the_web_tier_has_two_replicas_probes_a_budget_and_a_service():
    web = objects("Deployment")["gatehouse-web"]
    assert web["spec"]["replicas"] >= 2
    (container,) = pod_spec(web)["containers"]
    assert container["args"] == ["serve"]
    port = container["ports"][0]
    assert port["containerPort"] == 8080  # the image's GATEHOUSE_PORT
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    pod_labels = web["spec"]["template"]["metadata"]["labels"]
    assert web["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    budget = objects("PodDisruptionBudget")["gatehouse-web"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert 1 <= budget["spec"]["minAvailable"] < web["spec"]["replicas"]  # a drain can proceed, one pod always up
    service = objects("Service")["gatehouse"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]


def test_the_worker_runs_in_its_own_deployment_and_the_migrations_as_a_job():
    worker = objects("Deployment")["gatehouse-worker"]
    assert [c["args"] for c in pod_spec(worker)["containers"]] == [["worker"]]
    assert worker["spec"]["selector"] != objects("Deployment")["gatehouse-web"]["spec"]["selector"]
    job = objects("Job")["gatehouse-migrate"]
    assert [c["args"] for c in pod_spec(job)["containers"]] == [["db", "migrate"]]
    assert pod_spec(job)["restartPolicy"] == "Never"


def test_only_the_migrations_job_gets_the_owners_url_or_password():
    configmaps = objects("ConfigMap")
    assert all(OWNER_URL not in cm["data"] for cm in configmaps.values())
    for kind in ("Deployment", "Job"):
        for name, workload in objects(kind).items():
            spec = pod_spec(workload)
            owner_env = [OWNER_URL in container_env(c, configmaps) for c in spec["containers"]]
            owner_secret = "gatehouse-db-owner" in secrets_used(spec)
            if kind == "Job":
                assert all(owner_env) and owner_secret, name
            else:
                assert not any(owner_env) and not owner_secret, name


def test_each_pod_logs_in_as_the_role_whose_password_it_holds():
    """The URL's user and the Secret that PGPASSWORD comes from belong to the same role, as the Cluster declares."""
    cluster = objects("Cluster")["gatehouse-db"]["spec"]
    role_secrets = {cluster["bootstrap"]["initdb"]["owner"]: cluster["bootstrap"]["initdb"]["secret"]["name"]}
    role_secrets |= {r["name"]: r["passwordSecret"]["name"] for r in cluster["managed"]["roles"]}
    secrets = objects("Secret")
    for secret_name in role_secrets.values():
        assert secrets[secret_name]["type"] == "kubernetes.io/basic-auth"  # what CloudNativePG requires
    configmaps = objects("ConfigMap")
    for kind in ("Deployment", "Job"):
        for workload in objects(kind).values():
            for container in pod_spec(workload)["containers"]:
                env = container_env(container, configmaps)
                url = env.get(OWNER_URL) or env["GATEHOUSE_DATABASE_URL"]
                password_from = env["PGPASSWORD"]["secretKeyRef"]
                assert password_from["name"] == role_secrets[role_of(url)], workload["metadata"]["name"]
                assert secrets[password_from["name"]]["stringData"]["username"] == role_of(url)
                assert cluster["bootstrap"]["initdb"]["database"] in url


def test_every_secret_and_configmap_a_pod_reads_is_in_the_manifests_or_made_by_the_operator():
    made_elsewhere = {"gatehouse-db-ca"}  # CloudNativePG makes <cluster>-ca
    operator_made = {"gatehouse-policy"}  # kubectl create configmap gatehouse-policy --from-file=... (README)
    secrets, configmaps = set(objects("Secret")), set(objects("ConfigMap"))
    for kind in ("Deployment", "Job"):
        for workload in objects(kind).values():
            spec = pod_spec(workload)
            assert secrets_used(spec) <= secrets | made_elsewhere
            mounted = {v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v}
            assert mounted <= configmaps | operator_made
            assert spec["securityContext"]["runAsNonRoot"] is True
