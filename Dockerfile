# syntax=docker/dockerfile:1
#
# The Layers Webhooks dispatcher: `webhooks serve` as an unprivileged user.
#
#   docker build -t layers-webhooks .
#   docker run --rm --read-only --tmpfs /tmp -p 8080:8080 \
#       -e WEBHOOKS_DATABASE_URL=postgresql://… -e WEBHOOKS_ENCRYPTION_KEY=… \
#       -e WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS=kafka:9092 layers-webhooks
#   docker run --rm -e WEBHOOKS_DATABASE_URL=postgresql://… layers-webhooks migrate
#
# Two stages: the builder turns ./verifier and the service into wheels and installs them,
# with their runtime dependencies only (no [dev] extra), into /opt/venv; the runtime stage
# copies that virtualenv onto a clean base. Every dependency is installed from a prebuilt
# wheel (--only-binary), so neither stage needs a compiler.

ARG PYTHON_IMAGE=python:3.11-slim

# -- builder ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
COPY verifier/ verifier/
COPY pyproject.toml README.md ./
COPY dispatcher/ dispatcher/
# The event catalog: pyproject.toml maps it into the wheel as the package dispatcher.schemas.
COPY schemas/ schemas/

# The verifier first: the service depends on `layers-webhooks`, which is not on any index.
# The service with its [otel] extra (the OpenTelemetry SDK and OTLP/HTTP exporter): tracing
# stays off until OTEL_TRACES_EXPORTER is set, so the image can trace without a rebuild.
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m pip wheel --no-deps --wheel-dir /wheels ./verifier . \
 && python -m venv --without-pip /opt/venv \
 && python -m pip --python /opt/venv/bin/python install --only-binary=:all: \
        --find-links /wheels /wheels/layers_webhooks-*.whl \
        "$(ls /wheels/layers_webhooks_dispatcher-*.whl)[otel]"

# Fail the build, not the first pod, when the wheels miss a runtime dependency, the SQL
# migrations, the event schemas, a Kafka compression codec or the tracing extra.
RUN /opt/venv/bin/webhooks --version \
 && /opt/venv/bin/python -c "import dispatcher.service, dispatcher.spans, opentelemetry.exporter.otlp.proto.http.trace_exporter" \
 && WEBHOOKS_DATABASE_URL=sqlite:////tmp/smoke.db /opt/venv/bin/webhooks migrate \
 && /opt/venv/bin/python -c "from dispatcher.core.catalog import Catalog; Catalog.load()" \
 && /opt/venv/bin/python -c "from aiokafka import codec; assert codec.has_snappy() and codec.has_lz4() and codec.has_zstd()" \
 && rm -f /tmp/smoke.db

# -- runtime ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="layers-webhooks" \
      org.opencontainers.image.description="Layers Webhooks: Kafka events to signed, retried, deduplicated HTTP deliveries" \
      org.opencontainers.image.vendor="Layers" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="LicenseRef-Proprietary" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim"

# A fixed, numeric UID/GID so Kubernetes' runAsNonRoot can verify it and volumes can be
# pre-chowned. /var/lib/webhooks is the working directory, where the embedded default
# `sqlite:///webhooks.db` lives; with PostgreSQL the service writes nothing outside /tmp,
# so the root filesystem can be mounted read-only.
RUN groupadd --system --gid 10001 webhooks \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin webhooks \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/webhooks

COPY --from=builder /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    WEBHOOKS_HTTP_HOST=0.0.0.0

WORKDIR /var/lib/webhooks
USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM

# Liveness with the standard library only (slim has no curl): GET /healthz on the port the
# service listens on, ignoring proxy variables; any error or non-2xx exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; h = os.environ.get('WEBHOOKS_HTTP_HOST', '0.0.0.0'); h = {'0.0.0.0': '127.0.0.1', '': '127.0.0.1', '::': '[::1]'}.get(h, f'[{h}]' if ':' in h else h); r.build_opener(r.ProxyHandler({})).open(f\"http://{h}:{os.environ.get('WEBHOOKS_HTTP_PORT', '8080')}/healthz\", timeout=4)"]

ENTRYPOINT ["webhooks"]
CMD ["serve"]
