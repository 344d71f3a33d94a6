"""The container image's and docker-compose's contracts, checked without a Docker engine.

* The Dockerfile, read by a small parser: multi-stage, non-root numeric user, one entry point
  for every process, the OCI labels, no remote ADD, the ports; its COPY sources are all in the
  build context that .dockerignore leaves, and that context builds the wheel the image installs.
* .dockerignore, with Docker's matching rules (last matching pattern wins; a pattern matching
  a directory covers what is inside).
* deploy/docker-compose.yml (and the live.yml override), validated and normalised by the real
  Docker Compose CLI (`docker compose config` needs no engine), pinned and built by
  deploy/compose/tools.sh; then the normalised model is checked for what the pipeline needs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"
LIVE_FILE = ROOT / "deploy" / "compose" / "live.yml"
TOOLS = ROOT / "deploy" / "compose" / "tools.sh"
POM = ROOT / "deploy" / "local" / "pom.xml"

PIPELINE = ["webhook", "poller", "enricher", "erp-sync", "stock-restore", "auto-cancel"]
ONE_SHOTS = ["topics", "migrate", "sandbox-setup"]
OCI_LABELS = {
    "org.opencontainers.image.title",
    "org.opencontainers.image.description",
    "org.opencontainers.image.source",
    "org.opencontainers.image.licenses",
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.created",
}


# --- Dockerfile -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions per stage: comments dropped, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            continue  # a comment, also between continuation lines
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if line:
            logical.append(line)
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", instruction.args, re.IGNORECASE)
            assert match, f"cannot read FROM {instruction.args}"
            stages.append(Stage(match[1], match[2] or "", []))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"{args} is not exec form (a JSON array)"
    return [str(part) for part in value]


def label_keys(stage: Stage) -> dict[str, str]:
    labels: dict[str, str] = {}
    for args in stage.all("LABEL"):
        for key, value in re.findall(r'([\w.\-]+)=("(?:[^"\\]|\\.)*"|\S+)', args):
            labels[key] = value.strip('"')
    return labels


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def test_the_image_is_built_in_stages_on_slim_python(stages: list[Stage]) -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    default_base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert default_base and default_base[1].startswith("python:3.11-slim")
    assert len(stages) >= 2
    assert all(stage.name for stage in stages), "every stage is named (FROM ... AS name)"
    assert {stage.base for stage in stages} == {"${PYTHON_IMAGE}"}
    runtime = stages[-1]
    copies = runtime.all("COPY")
    assert copies and all(c.startswith("--from=") for c in copies), (
        "the runtime stage copies the venv from the builder, never the source tree"
    )


def test_the_image_runs_as_a_numeric_non_root_user(stages: list[Stage]) -> None:
    users = stages[-1].all("USER")
    assert users, "the runtime stage sets USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, "numeric uid (Kubernetes runAsNonRoot checks it)"
    assert gid.isdigit() and int(gid) > 0
    workdir = stages[-1].all("WORKDIR")[-1]
    assert workdir not in ("/", ""), "the SQLite default must not land in the image root"


def test_one_image_for_every_process(stages: list[Stage]) -> None:
    runtime = stages[-1]
    assert exec_form(runtime.all("ENTRYPOINT")[-1]) == ["orderflow"]
    assert exec_form(runtime.all("CMD")[-1]) == ["--help"]
    exposed = {port for args in runtime.all("EXPOSE") for port in args.split()}
    assert {"8080", "9400"} <= exposed
    env = " ".join(runtime.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env


def test_the_oci_labels_are_set(stages: list[Stage]) -> None:
    runtime = stages[-1]
    labels = label_keys(runtime)
    assert set(labels) >= OCI_LABELS, f"missing: {sorted(OCI_LABELS - set(labels))}"
    assert labels["org.opencontainers.image.licenses"] == _project()["license"]  # SPDX
    args = {a.partition("=")[0] for a in runtime.all("ARG")}
    for label, arg in [("version", "VERSION"), ("revision", "REVISION"), ("created", "CREATED")]:
        assert labels[f"org.opencontainers.image.{label}"] == "${" + arg + "}"
        assert arg in args, f"ARG {arg} is declared in the runtime stage, where LABEL reads it"


def test_nothing_is_fetched_from_a_url_by_add(stages: list[Stage]) -> None:
    for stage in stages:
        for args in stage.all("ADD"):
            assert not re.search(r"(https?|git)://|git@", args), f"remote ADD {args}"


def test_the_parser_reads_what_it_checks() -> None:
    parsed = parse_dockerfile(
        "# c\nFROM a AS one\nRUN x \\\n  # inside\n  && y\nFROM b AS two\nUSER 0\n"
        'LABEL k="a b" \\\n  j=c\nADD https://example.com/x /x\n'
    )
    assert [(s.base, s.name) for s in parsed] == [("a", "one"), ("b", "two")]
    assert parsed[0].all("RUN") == ["x  && y"]
    assert label_keys(parsed[1]) == {"k": "a b", "j": "c"}
    assert parsed[1].all("USER") == ["0"]
    assert parsed[1].all("ADD") == ["https://example.com/x /x"]


# --- .dockerignore and the build context ----------------------------------------------------


def _translate(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (Go's filepath.Match plus ``**``) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1].replace("[!", "[^"), end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def read_dockerignore(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception, pattern) in file order; patterns cleaned as Docker cleans them."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        rules.append((negated, _translate(pattern)))
    return rules


def in_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker sends ``path`` (relative, with /) in the build context."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negated, pattern in rules:
        if any(pattern.fullmatch(c) for c in candidates):
            excluded = not negated
    return not excluded


@pytest.fixture(scope="module")
def rules() -> list[tuple[bool, re.Pattern[str]]]:
    return read_dockerignore(DOCKERIGNORE.read_text(encoding="utf-8"))


def context_files(rules: list[tuple[bool, re.Pattern[str]]]) -> list[str]:
    """The checkout's files that the build context holds (git-tracked or not)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        dirnames[:] = [d for d in dirnames if d not in (".git", ".venv", "node_modules")]
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if in_context(rel, rules):
                found.append(rel)
    return sorted(found)


def test_dockerignore_keeps_local_state_out(rules: list[tuple[bool, re.Pattern[str]]]) -> None:
    for path in [
        ".git/config",
        ".venv/bin/python",
        "deploy/local/target/kafka-libs/kafka_2.13.jar",
        "deploy/local/.stack/pg/PG_VERSION",
        "deploy/compose/.tools/compose-v2/cli-plugins/docker-compose",
        ".env",
        "orderflow.db",
        "orderflow/__pycache__/cli.cpython-311.pyc",
        "tests/unit/deploy/test_container_files.py",
        "benchmarks/__main__.py",
        "docs/operations.md",
        ".mypy_cache/3.11/x.json",
        "orderflow.egg-info/PKG-INFO",
    ]:
        assert not in_context(path, rules), f"{path} would be sent to the Docker daemon"
    for path in ["pyproject.toml", "README.md", "orderflow/cli.py", "schemas/avro/order.avsc"]:
        assert in_context(path, rules), f"{path} is needed by the build"


def test_the_matcher_follows_docker_rules() -> None:
    rules = read_dockerignore("*\n!keep/\nkeep/**/*.tmp\n!keep/x.tmp\n/abs\n")
    assert not in_context("a.txt", rules)
    assert in_context("keep/a.py", rules)
    assert not in_context("keep/deep/b.tmp", rules)
    assert not in_context("keep/b.tmp", rules)  # **/ matches no directory, too
    assert in_context("keep/x.tmp", rules)  # the last matching pattern wins
    assert not in_context("abs/x", rules)  # a pattern matching a directory covers its files


def test_every_package_is_copied_and_in_the_context(
    stages: list[Stage], rules: list[tuple[bool, re.Pattern[str]]]
) -> None:
    packages = {
        p.rstrip("*") for p in _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    builder = stages[0]
    sources = {
        src.rstrip("/")
        for args in builder.all("COPY")
        if not args.startswith("--from=")
        for src in args.split()[:-1]
        if not src.startswith("--")
    }
    assert packages <= sources, f"the builder does not copy {sorted(packages - sources)}"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
        assert in_context(source, rules), f"COPY {source}, but .dockerignore leaves it out"
        if (ROOT / source).is_dir():
            inside = [p for p in (ROOT / source).rglob("*.py") if "__pycache__" not in p.parts]
            assert inside and all(in_context(str(p.relative_to(ROOT)), rules) for p in inside)


def test_the_build_context_builds_a_complete_wheel(
    rules: list[tuple[bool, re.Pattern[str]]], tmp_path: Path
) -> None:
    """The builder stage's own command on the context: a wheel holding the package data the
    processes read at run time (schemas, migrations) and no tests. Build isolation, as in the
    image: pip fetches the build backend pyproject.toml names (cached after the first run)."""
    context = tmp_path / "context"
    for rel in context_files(rules):
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, context / rel)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", str(wheels), str(context)],
        check=True, timeout=240,
    )  # fmt: skip
    (wheel,) = wheels.glob("orderflow-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = [
        str(p.relative_to(ROOT))
        for pattern in ["schemas/avro/*.avsc", "orderflow/migrations/versions/*.py"]
        for p in ROOT.glob(pattern)
    ]
    assert expected and set(expected) <= names, sorted(set(expected) - names)
    assert "orderflow/cli.py" in names and "shopee/sandbox/cli.py" in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "deploy/"))]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "orderflow = orderflow.cli:main" in text


# --- docker-compose -------------------------------------------------------------------------


def _compose_plugin() -> Path:
    """The pinned Compose plugin, built by tools.sh on first use (minutes; cached)."""
    done = subprocess.run(
        ["bash", str(TOOLS), "path"], capture_output=True, text=True, timeout=840, check=False
    )
    if done.returncode != 0:
        if shutil.which("go") is None:
            pytest.skip(f"Go is absent, so tools.sh cannot build Docker Compose: {done.stderr}")
        pytest.fail(f"tools.sh could not build Docker Compose:\n{done.stderr}")
    return Path(done.stdout.strip())


@pytest.fixture(scope="module")
def compose() -> Iterator[Any]:
    _compose_plugin()

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        clean = {
            k: v for k, v in os.environ.items() if not k.startswith(("ORDERFLOW_", "SANDBOX_"))
        }
        return subprocess.run(
            ["bash", str(TOOLS), "compose", *args],
            capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
            env={**clean, "COMPOSE_PROJECT_NAME": "orderflow", **(env or {})},
        )  # fmt: skip

    yield run


def _model(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, f"docker compose config refused it:\n{result.stderr}"
    model = json.loads(result.stdout)
    assert isinstance(model, dict)
    return model


LIVE_ENV = {
    "ORDERFLOW_SHOPEE_PARTNER_ID": "1000001",
    "ORDERFLOW_SHOPEE_PARTNER_KEY": "test-only-partner-key",
    "ORDERFLOW_SHOPEE_PUSH_KEY": "test-only-push-key",
    "ORDERFLOW_WEBHOOK_PUBLIC_URL": "https://orders.example.com/shopee/push",
    "ORDERFLOW_POSTGRES_PASSWORD": "test-only-password",
}


@pytest.mark.timeout(900)
def test_docker_compose_config_accepts_the_stack(compose: Any) -> None:
    """The acceptance check itself: `docker compose -f deploy/docker-compose.yml config`."""
    quiet = compose("-f", str(COMPOSE_FILE), "config", "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert "warn" not in quiet.stderr.lower(), quiet.stderr


@pytest.mark.timeout(900)
def test_the_stack_runs_the_pipeline_on_the_one_image(compose: Any) -> None:
    model = _model(compose("-f", str(COMPOSE_FILE), "config", "--format", "json"))
    services: dict[str, Any] = model["services"]
    assert set(PIPELINE + ONE_SHOTS) | {"kafka", "registry", "postgres", "sandbox"} <= set(services)
    for name in [*PIPELINE, *ONE_SHOTS, "sandbox"]:
        service = services[name]
        assert Path(service["build"]["context"]) == ROOT, f"{name} is built from the repository"
        assert service["build"]["dockerfile"] == "Dockerfile"
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "/tmp" in service["tmpfs"], name
        env = service["environment"]
        assert env["ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        assert env["ORDERFLOW_SCHEMA_REGISTRY_URL"].startswith("http://registry:8080/"), name
        assert env["ORDERFLOW_DATABASE_URL"].startswith("postgresql://"), name
    assert services["erp-sync"]["command"][:2] == ["consume", "erp-sync"]
    for name in PIPELINE:
        service = services[name]
        assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        port = "8080" if name == "webhook" else "9400"
        assert f":{port}/readyz" in " ".join(service["healthcheck"]["test"]), name
        conditions = {dep: spec["condition"] for dep, spec in service["depends_on"].items()}
        assert conditions.get("topics") == "service_completed_successfully", name
        assert conditions.get("migrate") == "service_completed_successfully", name
        assert service["restart"] == "unless-stopped", name
    for name in ONE_SHOTS:
        assert services[name]["restart"] == "no", name
    # auto-cancel must not start before the ERP has stock to check orders against
    assert "sandbox-setup" in services["auto-cancel"]["depends_on"]
    assert services["registry"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    registry_env = services["registry"]["environment"]
    assert registry_env["APICURIO_STORAGE_KIND"] == "sql"
    assert registry_env["APICURIO_STORAGE_SQL_KIND"] == "postgresql"
    kafka_env = services["kafka"]["environment"]
    assert "PLAINTEXT://kafka:9092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name, service in services.items():
        for mount in service.get("volumes", []):
            # Compose would create a missing bind source as an empty directory, silently.
            if mount["type"] == "bind":
                assert Path(mount["source"]).is_file(), f"{name}: no {mount['source']}"
    for published in (p for s in services.values() for p in s.get("ports", [])):
        assert published.get("host_ip") == "127.0.0.1", f"{published} is open beyond loopback"


def test_the_images_match_the_local_stack_versions() -> None:
    """The compose stack runs the Kafka and Apicurio versions deploy/local runs without
    Docker, so both stacks are tested against the same brokers."""
    pom = POM.read_text(encoding="utf-8")
    kafka = re.search(r"<kafka.version>(.+?)</kafka.version>", pom)
    apicurio = re.search(r"<apicurio.version>(.+?)</apicurio.version>", pom)
    assert kafka and apicurio
    compose_text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert re.search(rf"image: apache/kafka:{re.escape(kafka[1])}\b", compose_text)
    assert re.search(rf"image: apicurio/apicurio-registry:{re.escape(apicurio[1])}\b", compose_text)


@pytest.mark.timeout(900)
def test_the_live_override_drops_the_sandbox_and_needs_real_keys(compose: Any) -> None:
    files = ["-f", str(COMPOSE_FILE), "-f", str(LIVE_FILE)]
    missing = compose(*files, "config", "--quiet")
    assert missing.returncode != 0
    assert "ORDERFLOW_SHOPEE_PARTNER_ID" in missing.stderr or "required" in missing.stderr
    model = _model(compose(*files, "config", "--format", "json", env=LIVE_ENV))
    services = model["services"]
    assert "sandbox" not in services and "sandbox-setup" not in services
    for name in PIPELINE:
        env = services[name]["environment"]
        assert env["ORDERFLOW_SHOPEE_BASE_URL"] == "https://partner.shopeemobile.com", name
        assert env["ORDERFLOW_SHOPEE_PARTNER_KEY"] == "test-only-partner-key", name
        assert "test-only-password@postgres" in env["ORDERFLOW_DATABASE_URL"], name
        assert "sandbox-setup" not in services[name].get("depends_on", {}), name
    assert services["auto-cancel"]["environment"]["ORDERFLOW_AUTO_CANCEL_DRY_RUN"] == "true"


@pytest.mark.timeout(900)
def test_compose_config_rejects_a_broken_file(compose: Any, tmp_path: Path) -> None:
    """The check can fail: an unknown key and a dependency on a missing service."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "services:\n  a:\n    image: x\n    restart_policy: always\n", encoding="utf-8"
    )
    assert compose("-f", str(broken), "config", "--quiet").returncode != 0
    broken.write_text(
        "services:\n  a:\n    image: x\n    depends_on:\n      b: {condition: service_healthy}\n",
        encoding="utf-8",
    )
    assert compose("-f", str(broken), "config", "--quiet").returncode != 0


def test_committed_settings_hold_only_sandbox_keys() -> None:
    env_file = ROOT / "deploy" / "compose" / "orderflow.env"
    values = dict(
        line.split("=", 1)
        for line in env_file.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert values["ORDERFLOW_SHOPEE_PARTNER_KEY"].startswith("sandbox-")
    assert values["ORDERFLOW_SHOPEE_PUSH_KEY"].startswith("sandbox-")
    assert values["ORDERFLOW_SHOPEE_BASE_URL"] == "http://sandbox:8181"
    assert "compose-only" in values["ORDERFLOW_DATABASE_URL"]


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _project() -> dict[str, Any]:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    return project
