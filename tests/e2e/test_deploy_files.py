"""deploy/ read as a machine would: compose services, Dockerfile, Kubernetes manifests.

No Docker engine or cluster runs here, so these files are checked against the code they start:
the CLI commands exist, the ports are the services' ports, every RETRAINER_* variable is a
setting some service reads, and the pieces name each other consistently.
"""

from __future__ import annotations

import math
import re
import shlex
from collections import Counter
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml
from dask.utils import parse_bytes
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
DASK_SERVICES = ("dask-scheduler", "dask-worker")
# The switch that points the trainer at the compose cluster and, on Kubernetes, at the Service.
DASK_SWITCH = "RETRAINER_DASK_SCHEDULER=tcp://dask-scheduler:8786"


def known_variables() -> set[str]:
    return {s.variable for settings in all_settings().values() for s in settings}


def assert_cli_command(args: list[str]) -> None:
    """`retrainer ARGS` names a real command, not a group of them (asked through --help)."""
    words = [a for a in args if not a.startswith("-")]
    result = CliRunner().invoke(cli_app, [*words, "--help"])
    shown = f"`retrainer {' '.join(args)}`"
    assert result.exit_code == 0, f"{shown} is not a command: {result.output[-500:]}"
    assert "Commands" not in result.output, f"{shown} is a group: it needs a subcommand"


def dask_command(args: list[str]) -> dict[str, Any]:
    """The options `dask ARGS` starts with, parsed by the installed `dask` command line.

    `dask` is the console script of the dask package the image installs; its `scheduler` and
    `worker` subcommands are distributed's. Parsing (not running) them catches a misspelt option
    or a value of the wrong type, as the real start would."""
    assert [ep.value for ep in entry_points(group="console_scripts", name="dask")] == [
        "dask.__main__:main"
    ]
    name, *rest = args
    [entry] = entry_points(group="dask_cli", name=name)
    command = entry.load()
    params: dict[str, Any] = command.make_context(f"dask {name}", rest).params
    # `dask worker` passes options it does not know on to preloads: there must be none.
    assert params.get("preload_argv", ()) == (), f"dask {name}: unknown {params['preload_argv']}"
    return params


def http_port(address: str) -> int:
    """The port of a `--dashboard-address` like `:8787`."""
    return int(address.rpartition(":")[2])


def scheduler_address(host: str, port: int | str) -> str:
    return f"tcp://{host}:{port}"


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
        "dask-scheduler",
        "dask-worker",
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
    for name in ("migrate", "worker", "trainer", *DASK_SERVICES):
        service = services[name]
        assert service["image"] == "retrainer:local", name
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
    for name in ("migrate", "worker", "trainer", "dask-worker"):
        assert services[name]["env_file"] == "retrainer.env", name
    # The scheduler reads no database: it gets no settings, so no password either.
    assert "env_file" not in services["dask-scheduler"]
    assert "environment" not in services["dask-scheduler"]
    assert (COMPOSE.parent / ".." / "pyproject.toml").resolve().is_file()


def test_compose_dask_cluster_is_an_opt_in_profile_of_dask_commands() -> None:
    services = compose()["services"]
    profiled = {name for name, service in services.items() if "profiles" in service}
    assert profiled == set(DASK_SERVICES), "the default stack must not change"
    for name in DASK_SERVICES:
        assert services[name]["profiles"] == ["cluster"], name
        assert services[name]["entrypoint"] == ["dask"], name
        # Dask's port runs code on the workers: nothing of the cluster is published on the host.
        assert "ports" not in services[name], name
    scheduler = dask_command(services["dask-scheduler"]["command"])
    worker = dask_command(services["dask-worker"]["command"])
    assert services["dask-scheduler"]["command"][0] == "scheduler"
    assert services["dask-worker"]["command"][0] == "worker"
    assert worker["scheduler"] == scheduler_address("dask-scheduler", scheduler["port"])
    assert f"RETRAINER_DASK_SCHEDULER={worker['scheduler']}" == DASK_SWITCH
    assert worker["n_workers"] == "1"
    for name, params in (("dask-scheduler", scheduler), ("dask-worker", worker)):
        port = http_port(params["dashboard_address"])
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/health" in probe, name


def test_compose_trainer_switches_to_the_cluster_by_one_variable() -> None:
    trainer = compose()["services"]["trainer"]
    # A key without a value: taken from the shell or deploy/.env when set there, absent when not
    # (so the trainer fits in its own process by default); retrainer.env must not set it, since
    # the valueless key would hide it.
    assert "RETRAINER_DASK_SCHEDULER" in trainer["environment"]
    assert trainer["environment"]["RETRAINER_DASK_SCHEDULER"] is None
    assert "RETRAINER_DASK_SCHEDULER" not in env_file(DEPLOY / "retrainer.env")
    assert TrainerSettings.model_fields["dask_scheduler"].default is None
    usage = COMPOSE.read_text().split("\nname:")[0]
    assert f"COMPOSE_PROFILES=cluster {DASK_SWITCH}" in usage
    assert f"COMPOSE_PROFILES=cluster {DASK_SWITCH}" in (ROOT / "docs/deployment.md").read_text()


def docker_bytes(value: str | int) -> int:
    """A compose memory size (`2g`, `512m`, bytes): binary units, as Docker reads them."""
    match = re.fullmatch(r"(\d+)([bkmg]?)b?", str(value).lower())
    assert match, f"not a memory size: {value!r}"
    return int(match.group(1)) << (10 * "bkmg".index(match.group(2) or "b"))


def test_compose_dask_services_are_limited_and_sized_to_their_limits() -> None:
    services = compose()["services"]
    for name in DASK_SERVICES:
        limits = services[name]["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0, name
        assert docker_bytes(limits["memory"]) >= 512 * 1024**2, name
    worker_service = services["dask-worker"]
    worker = dask_command(worker_service["command"])
    limits = worker_service["deploy"]["resources"]["limits"]
    assert worker["nthreads"] == float(limits["cpus"])
    assert parse_bytes(worker["memory_limit"]) <= docker_bytes(limits["memory"])
    assert worker_service["deploy"]["replicas"] >= 2
    assert worker_service["depends_on"]["dask-scheduler"] == {"condition": "service_healthy"}


def test_compose_starts_things_in_order() -> None:
    services = compose()["services"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in ("worker", "trainer"):
        assert services[name]["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }
    for name in ("kafka", "postgres", "worker", "trainer", *DASK_SERVICES):
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
        "Deployment": 4,
        "Service": 3,
        "PodDisruptionBudget": 1,
        "NetworkPolicy": 2,
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
        refs = [next(iter(source.values()))["name"] for source in spec.get("envFrom", [])]
        if workload["metadata"]["name"] == "dask-scheduler":
            assert refs == [], "the scheduler reads no database: it needs no settings"
        else:
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


# -- Kubernetes: the Dask cluster the trainer fits on ---------------------------------------------


def quantity(value: str | int) -> float:
    """A Kubernetes quantity (`250m`, `2`, `4Gi`, `1G`) as a number (cores or bytes)."""
    match = re.fullmatch(r"([0-9.]+)(m|[KMGT]i?)?", str(value))
    assert match, f"not a quantity: {value!r}"
    number, suffix = float(match.group(1)), match.group(2) or ""
    if suffix == "m":
        return number / 1000
    power = "KMGT".index(suffix[0]) + 1 if suffix else 0
    return number * float((1024 if suffix.endswith("i") else 1000) ** power)


def expanded_args(spec: dict[str, Any]) -> list[str]:
    """The container's args with `$(VAR)` replaced as the kubelet does, for the variables the
    container sets itself (values, or its own resource limits through the downward API)."""
    values: dict[str, str] = {}
    for variable in spec.get("env", []):
        if "value" in variable:
            values[variable["name"]] = variable["value"]
            continue
        field = variable["valueFrom"]["resourceFieldRef"]
        assert field.get("containerName", spec["name"]) == spec["name"]
        kind, _, resource = field["resource"].partition(".")
        amount = quantity(spec["resources"][kind][resource]) / quantity(field.get("divisor", 1))
        values[variable["name"]] = str(math.ceil(amount))  # the kubelet rounds up

    def expand(match: re.Match[str]) -> str:
        assert match.group(1) in values, f"$({match.group(1)}) is set by no env entry"
        return values[match.group(1)]

    return [re.sub(r"\$\(([A-Z_][A-Z0-9_]*)\)", expand, str(arg)) for arg in spec["args"]]


def test_kubernetes_dask_services_run_dask_from_the_retrainer_image() -> None:
    deployments = by_kind("Deployment")
    for name in DASK_SERVICES:
        spec = container(deployments[name])
        assert spec["image"] == "retrainer", name  # the trainer's code runs in these pods
        assert spec["command"] == ["dask"], name
        assert expanded_args(spec)[0] == name.removeprefix("dask-"), name
    scheduler_spec = container(deployments["dask-scheduler"])
    scheduler = dask_command(expanded_args(scheduler_spec))
    ports = {p["name"]: p["containerPort"] for p in scheduler_spec["ports"]}
    assert ports == {
        "scheduler": int(scheduler["port"]),
        "http": http_port(scheduler["dashboard_address"]),
    }
    service = by_kind("Service")["dask-scheduler"]
    by_target = {p["targetPort"]: p["port"] for p in service["spec"]["ports"]}
    assert by_target == ports
    # The trainer and the workers name the scheduler by its Service and port.
    address = scheduler_address(service["metadata"]["name"], by_target["scheduler"])
    trainer_env = {
        e["name"]: e["value"] for e in container(deployments["retrainer-trainer"])["env"]
    }
    assert trainer_env["RETRAINER_DASK_SCHEDULER"] == address
    assert f"RETRAINER_DASK_SCHEDULER={address}" == DASK_SWITCH
    config = by_kind("ConfigMap")["retrainer-config"]["data"]
    assert "RETRAINER_DASK_SCHEDULER" not in config, "the workers would read it too"
    worker = dask_command(expanded_args(container(deployments["dask-worker"])))
    assert worker["scheduler"] == address


def test_kubernetes_dask_workers_have_probes_resources_and_a_matching_memory_limit() -> None:
    workload = by_kind("Deployment")["dask-worker"]
    assert workload["spec"]["replicas"] == 2
    spec = container(workload)
    worker = dask_command(expanded_args(spec))
    assert spec["ports"] == [
        {"name": "http", "containerPort": http_port(worker["dashboard_address"])}
    ]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert spec[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    resources = spec["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    memory = quantity(resources["limits"]["memory"])
    # Dask restarts a worker at 95 % of its memory limit: at or under the container's limit, that
    # comes before the OOM killer. Requested as limited, so no eviction under node pressure.
    assert 0 < parse_bytes(worker["memory_limit"]) <= memory
    assert quantity(resources["requests"]["memory"]) == memory
    assert worker["nthreads"] == math.ceil(quantity(resources["limits"]["cpu"]))
    assert worker["n_workers"] == "1"
    scheduler = container(by_kind("Deployment")["dask-scheduler"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert scheduler[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    assert {"cpu", "memory"} <= set(scheduler["resources"]["limits"])
    # Dask workers and the scheduler write only to /tmp (spilled data): a volume, as elsewhere.
    for name in DASK_SERVICES:
        mounts = container(by_kind("Deployment")[name])["volumeMounts"]
        assert {"name": "tmp", "mountPath": "/tmp"} in mounts, name  # noqa: S108 - a mount


def test_kubernetes_only_the_trainer_and_the_cluster_reach_the_dask_pods() -> None:
    deployments = by_kind("Deployment")
    names = {
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        for d in deployments.values()
    }
    policies = by_kind("NetworkPolicy")
    assert set(policies) == set(DASK_SERVICES)
    for name, policy in policies.items():
        selected = policy["spec"]["podSelector"]["matchLabels"]
        assert selected == {"app.kubernetes.io/name": name}
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        peers, http = policy["spec"]["ingress"]
        [selector] = peers["from"]
        [expression] = selector["podSelector"]["matchExpressions"]
        assert expression["key"] == "app.kubernetes.io/name"
        assert "retrainer-trainer" in expression["values"]
        assert set(expression["values"]) <= names, "a policy names pods that do not exist"
        assert "retrainer-worker" not in expression["values"]
        # The HTTP port (health, metrics) is open to all; it runs no code.
        assert http == {"ports": [{"port": "http"}]}
        assert "ports" not in peers
