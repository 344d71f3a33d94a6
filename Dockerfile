# One image for every orderflow process: the container runs `orderflow <subcommand>`, e.g.
#   docker run --rm orderflow:dev webhook
#   docker run --rm orderflow:dev consume auto-cancel
#
# Build (the OCI labels take their values from the build arguments):
#   docker build -t orderflow:dev \
#     --build-arg VERSION="$(git describe --tags --always)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#
# Runs as uid/gid 10001 and writes nothing outside /tmp, so a read-only root filesystem works.
# The database: use PostgreSQL (ORDERFLOW_DATABASE_URL=postgresql://...) for anything but a
# single replica. The SQLite default (orderflow.db in the working directory) lands in
# /var/lib/orderflow, which is writable only when a volume is mounted there:
#   docker run -v orderflow-data:/var/lib/orderflow orderflow:dev poller
#
# Ports: 8080 the webhook (ORDERFLOW_WEBHOOK_PORT), 9400 /healthz, /readyz and /metrics of every
# other process (ORDERFLOW_METRICS_PORT). No HEALTHCHECK: the port depends on the process, and
# Kubernetes probes /healthz and /readyz itself (deploy/docker-compose.yml declares its own).

# Debian release pinned with the Python minor: a rebuild must not move to a new distribution.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The venv has no pip of its own: the builder's pip installs into it (--python), and the
# runtime image gets only what orderflow needs.
RUN python -m venv --without-pip /opt/orderflow
# Dependencies first, from pyproject.toml alone, so that a code change reuses this layer.
COPY pyproject.toml README.md ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
    && pip --python /opt/orderflow/bin/python install --only-binary=:all: -r /tmp/requirements.txt
COPY orderflow ./orderflow
COPY schemas ./schemas
COPY shopee ./shopee
COPY producers ./producers
COPY consumers ./consumers
# A wheel, not the source tree: the image holds exactly what the package declares (schemas,
# migrations, py.typed) and nothing else from the checkout. pip compiles the bytecode here, so
# nothing needs writing at run time.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --no-deps --wheel-dir /tmp/wheels . \
    && pip --python /opt/orderflow/bin/python install --no-deps /tmp/wheels/orderflow-*.whl \
    && /opt/orderflow/bin/orderflow --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
ARG PYTHON_IMAGE
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
# Set it to the repository's public URL when building for a registry.
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="orderflow" \
      org.opencontainers.image.description="Shopee order activity as Avro events on Kafka, and the consumers that act on them." \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
RUN groupadd --system --gid 10001 orderflow \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin orderflow \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/orderflow
COPY --from=builder /opt/orderflow /opt/orderflow
ENV PATH=/opt/orderflow/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The working directory holds the SQLite default and is where a .env file would be read from.
WORKDIR /var/lib/orderflow
USER 10001:10001
EXPOSE 8080 9400
# SIGTERM (Docker's and Kubernetes' stop signal) drains every process: orderflow handles it
# itself as PID 1.
ENTRYPOINT ["orderflow"]
CMD ["--help"]
