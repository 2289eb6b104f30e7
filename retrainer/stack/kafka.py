"""The local Apache Kafka broker: jars from Maven Central, KRaft storage, start, health, stop."""

from __future__ import annotations

import base64
import logging
import re
import shutil
import string
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from edge.kafka import KafkaConnection, KafkaSettings
from retrainer.stack import procs
from retrainer.stack.assets import asset
from retrainer.stack.errors import DownloadFailed, PortTaken, ServiceFailed, ToolMissing
from retrainer.stack.settings import StackSettings
from schemas.diagnostics import port_holder

MIN_JAVA = 17
DEPENDENCY_PLUGIN = "3.8.1"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_quiet = logging.getLogger("retrainer.stack.kafka.client")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False

_UNREACHABLE = (
    "Could not transfer",
    "UnknownHostException",
    "Connection refused",
    "Connect timed out",
    "Network is unreachable",
    "No route to host",
    "Read timed out",
    "status code: 5",
    "No plugin found for prefix",
    "Plugin org.apache.maven.plugins:maven-dependency-plugin",
)


@dataclass(frozen=True)
class KafkaStatus:
    """What `stack status` reports about the broker."""

    state: str  # running | stopped | external | unreachable
    bootstrap: str
    pid: int | None = None
    rss_bytes: int | None = None
    version: str | None = None
    log: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class LocalKafka:
    """A single-node KRaft broker under `settings.kafka_dir`, owned by this project."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.root = settings.kafka_dir
        self.libs = self.root / f"jars-{settings.kafka_version}"
        self.data = self.root / "data"
        self.logs = self.root / "logs"
        self.config = self.root / "server.properties"
        self.pidfile = self.root / "kafka.pid"
        # The broker this object started, reaped on stop (a process that lives on after the CLI
        # exits is found again by its pid file).
        self._child: subprocess.Popen[bytes] | None = None

    # -- prerequisites -------------------------------------------------------------------------

    @staticmethod
    def java_major() -> int:
        java = shutil.which("java")
        if java is None:
            raise ToolMissing(
                "java was not found on PATH; the local Kafka broker needs Java 17 or newer",
                "install a JRE 17+ (Debian: apt-get install openjdk-17-jre-headless) "
                "or point RETRAINER_KAFKA_BOOTSTRAP at a broker you run",
            )
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, check=False, timeout=60
        )
        text = out.stderr + out.stdout
        match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
        if not match:
            raise ToolMissing(
                f"could not read the Java version from `java -version`: {text.strip()[:200]}",
                "install a JRE 17+ and make sure `java -version` works",
            )
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8.0_392" style
            major = int(match.group(2))
        if major < MIN_JAVA:
            raise ToolMissing(
                f"Java {major} is too old; Apache Kafka 4 needs Java {MIN_JAVA} or newer",
                "install a JRE 17+ (Debian: apt-get install openjdk-17-jre-headless) "
                "and put it first on PATH (or set JAVA_HOME)",
            )
        return major

    def jars_cached(self) -> bool:
        return (self.libs / ".complete").is_file()

    def resolve_jars(self) -> float:
        """Copy the broker's jars from Maven Central into the cache; returns seconds spent."""
        if self.jars_cached():
            return 0.0
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ToolMissing(
                "mvn was not found on PATH; it resolves the Kafka broker jars from Maven Central",
                "install Apache Maven (Debian: apt-get install maven); the jars are cached "
                f"in {self.libs} so this happens once",
            )
        started = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="jars-", dir=self.root))
        cmd = [
            mvn,
            "-B",
            "-q",
            *(["-s", str(self.settings.maven_settings)] if self.settings.maven_settings else []),
            "-f",
            str(asset("pom.xml")),
            f"-Dkafka.version={self.settings.kafka_version}",
            f"-Dmaven.repo.local={self.settings.home / 'm2'}",
            # Fully qualified, so Maven need not look the plugin prefix up in remote metadata.
            f"org.apache.maven.plugins:maven-dependency-plugin:{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
        if out.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            text = _ANSI.sub("", out.stdout + out.stderr)
            errors = "\n".join(line for line in text.splitlines() if "ERROR" in line)[:1500]
            if any(marker in text for marker in _UNREACHABLE):
                raise DownloadFailed(
                    "Maven Central is unreachable, so the Kafka broker jars cannot be "
                    f"downloaded:\n{errors}",
                    "check the network or proxy (Maven reads ~/.m2/settings.xml for a mirror "
                    "or proxy), then run `retrainer stack up` again",
                )
            raise DownloadFailed(
                f"Maven could not resolve Kafka {self.settings.kafka_version}:\n{errors}",
                "check RETRAINER_KAFKA_VERSION names a release whose artifacts Maven Central "
                "serves (4.3.1 is known to work)",
            )
        jars = sorted(p.name for p in staging.glob("*.jar"))
        (staging / ".complete").write_text("\n".join(jars) + "\n")
        if self.libs.exists():
            shutil.rmtree(self.libs)
        staging.rename(self.libs)
        return time.monotonic() - started

    # -- lifecycle -----------------------------------------------------------------------------

    def process(self) -> psutil.Process | None:
        return procs.live_process(procs.read_pid(self.pidfile), str(self.config))

    def answers(self, timeout: float = 3.0) -> bool:
        """Whether the broker answers a metadata request."""
        bootstrap = self.settings.bootstrap
        host, _, port = bootstrap.split(",")[0].rpartition(":")
        if not procs.port_open(host or self.settings.host, int(port)):
            return False
        return metadata_ok(bootstrap, timeout)

    def _java_cmd(self, main: str, *args: str) -> list[str]:
        heap = self.settings.kafka_heap_mb
        return [
            "java",
            f"-Xmx{heap}m",
            f"-Xms{min(heap, 256)}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.logs}",
            f"-Dlog4j2.configurationFile={asset('log4j2.xml')}",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def _render_config(self) -> None:
        template = string.Template(asset("server.properties.template").read_text())
        self.config.write_text(
            template.substitute(
                host=self.settings.host,
                port=self.settings.kafka_port,
                controller_port=self.settings.kafka_controller_port,
                sasl_port=self.settings.kafka_sasl_port,
                sasl_username=_jaas_safe(self.settings.kafka_local_username, "USERNAME"),
                sasl_password=_jaas_safe(
                    self.settings.kafka_local_password.get_secret_value(), "PASSWORD"
                ),
                data_dir=self.data,
            )
        )

    def _format_storage(self) -> None:
        if (self.data / "meta.properties").is_file():
            return
        cluster_id = new_cluster_id()
        out = subprocess.run(
            self._java_cmd(
                "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.config)
            ),
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if out.returncode != 0:
            raise ServiceFailed(
                f"formatting the KRaft storage in {self.data} failed:\n{out.stdout}{out.stderr}",
                f"remove {self.data} (`retrainer stack down --purge`) and try again",
            )

    def start(self) -> bool:
        """Start the broker unless ours already runs; returns whether it was started now."""
        if self.process() is not None:
            if not procs.wait_for(self.answers, self.settings.kafka_start_timeout_s, 0.25):
                raise ServiceFailed(
                    f"our Kafka broker runs (pid {procs.read_pid(self.pidfile)}) but does not "
                    "answer metadata requests",
                    f"see {self.logs / 'server.log'}; `retrainer stack down` and up again",
                )
            return False
        for port in (
            self.settings.kafka_port,
            self.settings.kafka_controller_port,
            self.settings.kafka_sasl_port,
        ):
            if procs.port_open(self.settings.host, port):
                raise PortTaken(
                    f"port {self.settings.host}:{port} is taken by "
                    f"{port_holder(port)}, not by our broker",
                    "stop that process, or move our broker with RETRAINER_KAFKA_PORT / "
                    "RETRAINER_KAFKA_CONTROLLER_PORT / RETRAINER_KAFKA_SASL_PORT (or use it: "
                    "RETRAINER_KAFKA_BOOTSTRAP)",
                )
        self.java_major()
        self.resolve_jars()
        for folder in (self.data, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self._render_config()
        self._format_storage()
        stdout = (self.logs / "stdout.log").open("ab")
        try:
            child = subprocess.Popen(
                self._java_cmd("kafka.Kafka", str(self.config)),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            stdout.close()
        self.pidfile.write_text(f"{child.pid}\n")
        self._child = child

        def healthy() -> bool:
            if child.poll() is not None:
                raise ServiceFailed(
                    f"the Kafka broker exited with status {child.returncode} while starting:\n"
                    + procs.tail(self.logs / "server.log")
                    + procs.tail(self.logs / "stdout.log"),
                    f"read {self.logs / 'server.log'}; a port clash or a damaged {self.data} "
                    "(`retrainer stack down --purge`) are the usual causes",
                )
            return self.answers()

        if not procs.wait_for(healthy, self.settings.kafka_start_timeout_s, 0.25):
            raise ServiceFailed(
                f"the Kafka broker did not answer within {self.settings.kafka_start_timeout_s}s",
                f"read {self.logs / 'server.log'}",
            )
        return True

    def stop(self) -> bool:
        proc = self.process()
        self.pidfile.unlink(missing_ok=True)
        if proc is None:
            return False
        procs.terminate_group(proc, timeout=30)
        if self._child is not None:
            self._child.wait(timeout=30)
            self._child = None
        return True

    def purge(self) -> None:
        for path in (self.data, self.logs, self.config):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def status(self) -> KafkaStatus:
        if not self.settings.local_kafka:
            answers = metadata_ok(self.settings.bootstrap, 3.0, external=True)
            state = "external" if answers else "unreachable"
            return KafkaStatus(state=state, bootstrap=self.settings.bootstrap)
        proc = self.process()
        if proc is None:
            return KafkaStatus(state="stopped", bootstrap=self.settings.bootstrap)
        try:
            rss = proc.memory_info().rss
        except psutil.Error:
            rss = None
        return KafkaStatus(
            state="running" if self.answers() else "starting",
            bootstrap=self.settings.bootstrap,
            pid=proc.pid,
            rss_bytes=rss,
            version=self.settings.kafka_version,
            log=str(self.logs / "server.log"),
        )


def _jaas_safe(value: str, setting: str) -> str:
    """`value` as it may stand between the quotes of the broker's JAAS line."""
    if not value or any(c in value for c in '"\\;=\n\r ') or not value.isprintable():
        raise ServiceFailed(
            f"RETRAINER_KAFKA_LOCAL_{setting} cannot be written into the broker's configuration",
            "use letters, digits and punctuation other than quotes, backslashes, ; and =",
        )
    return value


def metadata_ok(bootstrap: str, timeout: float, *, external: bool = False) -> bool:
    """Whether a broker at `bootstrap` answers a metadata request within `timeout`; an external
    one is asked with the services' RETRAINER_KAFKA_* security settings (SASL, TLS), ours on
    its PLAINTEXT listener."""
    kafka = (
        KafkaSettings(kafka_bootstrap=bootstrap).kafka if external else KafkaConnection(bootstrap)
    )
    admin = AdminClient(kafka.confluent({"logger": _quiet}))
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def new_cluster_id() -> str:
    """A random UUID in unpadded URL-safe base64, as Kafka's Uuid prints it, never starting with
    "-": the storage tool would read such an id (1 in 64 of them) as an option and refuse it."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id
