"""Brokers and databases of the fault suite's own: RabbitMQ nodes (alone or as a cluster) and a
PostgreSQL instance, each on its own ports with its data under one temporary directory, so that
stopping, restarting or hanging them touches nobody else's service on the machine.

RabbitMQ nodes run Debian's scripts (``/usr/lib/rabbitmq/bin``) as the current user with
``RABBITMQ_*`` variables naming their node, ports and directories; the nodes of a cluster share
an Erlang cookie through the ``HOME`` they are given, and register with the machine's epmd.
PostgreSQL runs ``initdb`` / ``pg_ctl`` of the newest installed major version, as ``postgres``
when started as root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench._support import free_port

RABBITMQ_BIN = Path(os.environ.get("FAULTS_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
HOST = "localhost"


def _run(command: list[str], *, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}")
    return result.stdout


@dataclass
class BrokerNode:
    """One RabbitMQ node of ours: ``rabbit-<name>@localhost`` on ``port``."""

    name: str
    base: Path
    home: Path  # holds the Erlang cookie the nodes of a cluster share
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def node(self) -> str:
        return f"rabbit-{self.name}@{HOST}"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        """The environment of this node's server and of ``rabbitmqctl`` calls to it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        config = self.base / "rabbitmq.conf"
        env.update(
            {
                "HOME": str(self.home),
                "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.base / "log"),
                "RABBITMQ_PID_FILE": str(self.base / "pid"),
                "RABBITMQ_CONFIG_FILE": str(config),
                "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
                "ERL_EPMD_ADDRESS": "127.0.0.1",
                "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            }
        )
        return env

    def prepare(self) -> None:
        """The node's directories and files (no plugins, so no management listener)."""
        for sub in ("mnesia", "log"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"
            # quorum queue leaders spread over the cluster rather than all on the declaring node
            "queue_leader_locator = balanced\n"
        )
        (self.base / "rabbitmq-env.conf").write_text("")
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "advanced.config").write_text("[].\n")

    def start(self, timeout: float = 120) -> None:
        """Start the server and wait until it takes connections."""
        self.prepare()
        log = (self.base / "server.out").open("ab")
        self.process = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.base,  # where a crashing VM writes erl_crash.dump
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:  # await_startup fails at once while the node has not registered yet
            if self.process.poll() is not None:
                tail = (self.base / "server.out").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.node} exited at start:\n{tail}")
            try:
                self.ctl("await_startup", "--timeout", "10", timeout=30)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    self._kill()
                    raise
                time.sleep(1)

    def ctl(self, *args: str, timeout: float = 120) -> str:
        """``rabbitmqctl -n <node> ...``."""
        return _run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-q", "-n", self.node, *args],
            env=self.env(),
            timeout=timeout,
        )

    def stop(self) -> None:
        """Stop the whole node (the Erlang VM), as an operator taking it down."""
        if self.process is None:
            return
        try:
            self.ctl("stop", timeout=120)
        except (RuntimeError, subprocess.TimeoutExpired):
            self._kill()
        self._wait()

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)

    def _wait(self) -> None:
        if self.process is not None:
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self._kill()
                self.process.wait(10)
            self.process = None


class BrokerCluster:
    """``size`` nodes of ours under ``base`` named ``rabbit-<name>N``, joined into one cluster
    (1: a lone node)."""

    def __init__(self, base: Path, size: int = 3, name: str = "faults") -> None:
        home = base / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(os.urandom(20).hex().upper())
            cookie.chmod(0o400)
        self.nodes = [
            BrokerNode(f"{name}{n + 1}", base / f"node{n + 1}", home) for n in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self) -> None:
        first, *others = self.nodes
        first.start()
        for node in others:
            node.start()
            node.ctl("stop_app")
            node.ctl("join_cluster", first.node)
            node.ctl("start_app")
        if others:
            running = first.ctl("eval", "length(rabbit_nodes:all_running()).")
            if int(running.strip()) != len(self.nodes):
                raise RuntimeError(f"the cluster has {running.strip()} running nodes")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def quorum_members(self, vhost: str = "/") -> dict[str, tuple[str, int]]:
        """Each quorum queue's leader and its number of members."""
        out = self.nodes[0].ctl(
            "list_queues", "-p", vhost, "name", "type", "leader", "members", "--formatter", "json"
        )
        import json

        rows = json.loads(out)
        return {
            r["name"]: (str(r["leader"]), len(r["members"]))
            for r in rows
            if r.get("type") == "quorum"
        }


def _postgres_bin() -> Path:
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    if not versions:
        raise SystemExit("the fault suite needs PostgreSQL's server binaries (pg_ctl, initdb)")
    return versions[-1].parent


class Postgres:
    """A PostgreSQL instance of ours on ``port``, its data in ``base``, trust authentication."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.data = base / "data"
        self.bin = _postgres_bin()
        self.version = self.bin.parent.name

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *command]
        return list(command)

    def _pg_ctl(self, *args: str, timeout: float = 120) -> None:
        _run(
            self._as_owner(
                str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log"), *args
            ),
            timeout=timeout,
        )

    def start(self) -> None:
        """initdb on first use, then start and wait until it takes connections."""
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        if not self.data.exists():
            _run(
                self._as_owner(
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                )
            )
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} -c fsync=off"
            " -c max_connections=200"
        )
        self._pg_ctl("-w", "-o", options, "start")

    def restart(self) -> None:
        """An immediate-mode restart: connections cut, crash recovery at start."""
        self._pg_ctl("-m", "immediate", "-w", "restart")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("-m", "immediate", "-w", "stop")
