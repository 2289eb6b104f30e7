"""deploy/ read as a machine would: compose services, Dockerfile, Kubernetes manifests.

No Docker engine or cluster runs here, so these files are checked against the code they start:
the CLI commands exist, the ports are the services' ports, every RETRAINER_* variable is a
setting some service reads, and the pieces name each other consistently.
"""

from __future__ import annotations

import re
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from retrainer.cli import app as cli_app
from streams.settings import StreamsSettings
from tests.e2e.conftest import DEPLOY
from tests.factories import ROOT
from tests.unit.docs.settings_reference import all_settings
from trainer.settings import TrainerSettings

pytestmark = pytest.mark.e2e

COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
WORKER_PORT = StreamsSettings.model_fields["web_port"].default
TRAINER_PORT = TrainerSettings.model_fields["trainer_metrics_port"].default
PARTITIONS = StreamsSettings.model_fields["partitions"].default
SECRET_VARIABLES = {
    "RETRAINER_DATABASE_URL",
    "RETRAINER_API_TOKEN",
    "RETRAINER_KAFKA_SASL_PASSWORD",
}


def known_variables() -> set[str]:
    return {s.variable for settings in all_settings().values() for s in settings}


def assert_cli_command(args: list[str]) -> None:
    """`retrainer ARGS` names a real command, not a group of them (asked through --help)."""
    words = [a for a in args if not a.startswith("-")]
    result = CliRunner().invoke(cli_app, [*words, "--help"])
    shown = f"`retrainer {' '.join(args)}`"
    assert result.exit_code == 0, f"{shown} is not a command: {result.output[-500:]}"
    assert "Commands" not in result.output, f"{shown} is a group: it needs a subcommand"


def env_file(path: Path) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            pairs[key.strip()] = value
    return pairs


# -- docker-compose ------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def published(service: dict[str, Any]) -> dict[int, str]:
    """Container port → host side, from `ports: ["HOST:CONTAINER"]`."""
    ports: dict[int, str] = {}
    for spec in service.get("ports", []):
        assert isinstance(spec, str), f"quote port mappings: {spec!r}"
        host, _, container = spec.rpartition(":")
        ports[int(container)] = host
    return ports


def test_compose_has_every_service_with_its_command_and_port() -> None:
    services = compose()["services"]
    assert set(services) == {
        "kafka",
        "postgres",
        "migrate",
        "worker",
        "trainer",
        "prometheus",
        "grafana",
    }
    commands = {name: services[name]["command"] for name in ("migrate", "worker", "trainer")}
    assert commands == {"migrate": ["db", "migrate"], "worker": ["worker"], "trainer": ["trainer"]}
    for args in commands.values():
        assert_cli_command(args)
    assert WORKER_PORT in published(services["worker"])
    assert TRAINER_PORT in published(services["trainer"])
    assert published(services["prometheus"]) == {9090: "9090"}
    assert published(services["grafana"]) == {3000: "3000"}
    assert published(services["kafka"]) == {9094: "9094"}
    # The worker's host range leaves one port per replica, up to the partition count.
    first, _, last = published(services["worker"])[WORKER_PORT].partition("-")
    assert int(last) - int(first) + 1 == PARTITIONS


def test_compose_builds_one_image_for_the_retrainer_services() -> None:
    services = compose()["services"]
    for name in ("migrate", "worker", "trainer"):
        service = services[name]
        assert service["image"] == "retrainer:local", name
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
        assert service["env_file"] == "retrainer.env", name
    assert (COMPOSE.parent / ".." / "pyproject.toml").resolve().is_file()


def test_compose_starts_things_in_order() -> None:
    services = compose()["services"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in ("worker", "trainer"):
        assert services[name]["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }
    for name in ("kafka", "postgres", "worker", "trainer"):
        assert services[name]["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
    worker_probe = " ".join(services["worker"]["healthcheck"]["test"])
    assert f"127.0.0.1:{WORKER_PORT}/health" in worker_probe


def test_compose_kafka_runs_kraft_and_the_services_reach_it() -> None:
    kafka = compose()["services"]["kafka"]
    environment = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(environment["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in key for key in environment)
    assert len(environment["CLUSTER_ID"]) == 22  # a base64 UUID, as kafka-storage makes
    advertised = dict(
        item.split("://", 1) for item in environment["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    settings = env_file(DEPLOY / "retrainer.env")
    assert advertised["INTERNAL"] == settings["RETRAINER_KAFKA_BOOTSTRAP"]
    assert advertised["EXTERNAL"] == "localhost:9094"
    assert environment["KAFKA_NUM_PARTITIONS"] == settings["RETRAINER_PARTITIONS"]


def test_compose_database_url_matches_postgres() -> None:
    postgres = compose()["services"]["postgres"]["environment"]
    url = env_file(DEPLOY / "retrainer.env")["RETRAINER_DATABASE_URL"]
    assert url == (
        f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    )


def test_compose_settings_are_real_settings() -> None:
    settings = env_file(DEPLOY / "retrainer.env")
    variables = set(settings)
    for service in compose()["services"].values():
        variables |= {k for k in service.get("environment", {}) if k.startswith("RETRAINER_")}
    assert variables - known_variables() == set()
    assert settings["RETRAINER_WEB_HOST"] == "0.0.0.0"  # noqa: S104 - inside a container
    assert int(settings["RETRAINER_WEB_PORT"]) == WORKER_PORT
    assert int(settings["RETRAINER_TRAINER_METRICS_PORT"]) == TRAINER_PORT


def test_compose_mounts_prometheus_and_grafana_files_that_exist() -> None:
    services = compose()["services"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    [worker_sd] = jobs["retrainer-worker"]["dns_sd_configs"]
    assert (worker_sd["names"], worker_sd["port"]) == (["worker"], WORKER_PORT)
    [trainer_static] = jobs["retrainer-trainer"]["static_configs"]
    assert trainer_static["targets"] == [f"trainer:{TRAINER_PORT}"]
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/retrainer.yml").read_text()
    )
    dashboards = provider["providers"][0]["options"]["path"]
    assert f"./grafana/dashboards:{dashboards}:ro" in services["grafana"]["volumes"]
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dashboards}/retrainer.json"
    declared = set(compose()["volumes"])
    named = {
        volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if not volume.startswith(".")
    }
    assert named == declared


# -- Dockerfile -----------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", (DEPLOY / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def test_dockerfile_builds_from_the_lock_and_runs_unprivileged() -> None:
    steps = dockerfile()
    bases = [args for word, args in steps if word == "FROM"]
    assert [b.split()[0] for b in bases] == ["python:3.11-slim", "python:3.11-slim"]
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "-c requirements.lock" in runs
    assert "-r pyproject.toml" in runs
    users = [args for word, args in steps if word == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert ("ENTRYPOINT", '["retrainer"]') in steps
    exposed = {int(p) for word, args in steps if word == "EXPOSE" for p in args.split()}
    assert exposed == {WORKER_PORT, TRAINER_PORT}
    env = " ".join(args for word, args in steps if word == "ENV")
    assert "RETRAINER_WEB_HOST=0.0.0.0" in env


def test_dockerfile_copies_what_exists_and_ignores_local_state() -> None:
    for word, args in dockerfile():
        if word == "COPY" and not args.startswith("--from"):
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such path"
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", ".git", "tests"} <= set(ignored)


def test_the_image_copies_every_package_the_wheel_ships() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    copied = {
        source.rstrip("/")
        for word, args in dockerfile()
        if word == "COPY" and not args.startswith("--from")
        for source in shlex.split(args)[:-1]
    }
    assert set(shipped) <= copied, f"the Dockerfile does not copy {set(shipped) - copied}"


# -- Kubernetes ---------------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == on_disk
    documents: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        documents += _load_all((K8S / name).read_text())
    return documents


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in manifests() if d["kind"] == kind}


def test_kubernetes_has_the_workloads() -> None:
    kinds = Counter(d["kind"] for d in manifests())
    assert kinds == {
        "Namespace": 1,
        "ConfigMap": 1,
        "Secret": 1,
        "Job": 1,
        "Deployment": 2,
        "Service": 2,
        "PodDisruptionBudget": 1,
    }


def container(workload: dict[str, Any]) -> dict[str, Any]:
    [only] = workload["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def test_kubernetes_workers_scale_up_to_the_partition_count() -> None:
    config = by_kind("ConfigMap")["retrainer-config"]["data"]
    worker = by_kind("Deployment")["retrainer-worker"]
    assert 1 <= worker["spec"]["replicas"] <= int(config["RETRAINER_PARTITIONS"])
    assert int(config["RETRAINER_PARTITIONS"]) == PARTITIONS
    spec = container(worker)
    assert spec["args"] == ["worker"]
    assert spec["ports"] == [{"name": "http", "containerPort": WORKER_PORT}]
    for probe in ("startupProbe", "readinessProbe"):
        assert spec[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    assert spec["livenessProbe"]["httpGet"]["port"] == "http"


def test_kubernetes_trainer_and_migration() -> None:
    trainer = by_kind("Deployment")["retrainer-trainer"]
    assert trainer["spec"]["replicas"] == 1
    spec = container(trainer)
    assert spec["args"] == ["trainer"]
    config = by_kind("ConfigMap")["retrainer-config"]["data"]
    assert spec["ports"][0]["containerPort"] == int(config["RETRAINER_TRAINER_METRICS_PORT"])
    threads = {e["name"]: e["value"] for e in spec["env"]}["RETRAINER_TRAINING_THREADS"]
    assert int(threads) == int(spec["resources"]["limits"]["cpu"])
    job = by_kind("Job")["retrainer-migrate"]
    assert container(job)["args"] == ["db", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    for workload in (trainer, job, by_kind("Deployment")["retrainer-worker"]):
        assert_cli_command(container(workload)["args"])


def test_kubernetes_pods_get_their_settings_and_run_unprivileged() -> None:
    config = by_kind("ConfigMap")["retrainer-config"]["data"]
    secret = by_kind("Secret")["retrainer-secrets"]["stringData"]
    assert set(config) | set(secret) <= known_variables()
    assert set(secret) <= SECRET_VARIABLES
    assert not set(config) & SECRET_VARIABLES, "secrets belong in the Secret"
    workloads = [*by_kind("Deployment").values(), *by_kind("Job").values()]
    for workload in workloads:
        pod = workload["spec"]["template"]
        spec = container(workload)
        refs = [next(iter(source.values()))["name"] for source in spec["envFrom"]]
        assert refs == ["retrainer-config", "retrainer-secrets"]
        assert spec["image"] == "retrainer"
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["allowPrivilegeEscalation"] is False
        annotations = pod["metadata"].get("annotations", {})
        if annotations:
            assert int(annotations["prometheus.io/port"]) == spec["ports"][0]["containerPort"]


def test_kubernetes_services_select_their_pods() -> None:
    deployments = by_kind("Deployment")
    for name, service in by_kind("Service").items():
        pods = deployments[name]["spec"]["template"]
        assert service["spec"]["selector"].items() <= pods["metadata"]["labels"].items()
        port_names = {p["name"] for p in container(deployments[name])["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_every_deploy_yaml_file_reads() -> None:
    files = [p for p in DEPLOY.rglob("*.y*ml") if "local" not in p.parts]
    assert len(files) >= 12
    for path in files:
        assert _load_all(path.read_text()), path


def _load_all(text: str) -> list[object]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]
