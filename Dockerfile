# Lightfuse container image.
#   docker build -t lightfuse:dev .
#   docker run --rm -p 3000:3000 -v lightfuse-data:/data lightfuse:dev
# The build stage turns the source into a wheel and installs it with its dependencies into a venv; the final
# stage copies only that venv, so pip's caches, the source tree and the wheel never reach the image. Every
# dependency ships manylinux wheels, so neither stage needs a compiler.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ONLY_BINARY=:all:
WORKDIR /src
COPY pyproject.toml README.md ./
COPY lightfuse ./lightfuse
# [otel]: self-tracing (OTEL_EXPORTER_OTLP_ENDPOINT), loaded only when that is set; [grpc]: the OTLP/gRPC
# receiver (LIGHTFUSE_OTLP_GRPC_PORT; grpcio is ~20 MiB installed), likewise imported only when its port is set.
# PIP_ONLY_BINARY: a dependency without a wheel for this platform fails the build here instead of pulling a
# compiler into the image; the wheel build itself is pure Python (hatchling).
RUN python -m venv /opt/lightfuse \
 && /opt/lightfuse/bin/pip wheel --no-deps --wheel-dir /tmp/wheels . \
 && /opt/lightfuse/bin/pip install "$(ls /tmp/wheels/lightfuse-*.whl)[otel,grpc]" \
 && /opt/lightfuse/bin/python -m compileall -q /opt/lightfuse/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="Lightfuse" \
      org.opencontainers.image.description="A small, Langfuse-compatible LLM engineering platform" \
      org.opencontainers.image.licenses="MIT"
# HOSTNAME=0.0.0.0: Lightfuse binds to $HOSTNAME (Langfuse's variable), and container runtimes set HOSTNAME to
# the container or pod name, which resolves to one interface only - `kubectl port-forward` (which connects to
# localhost inside the pod) would then find nothing listening. Docker lets this ENV win; under Kubernetes the
# runtime's value may win over an image's ENV, so the Helm chart sets HOSTNAME in the pod spec as well.
ENV PATH=/opt/lightfuse/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOSTNAME=0.0.0.0 \
    PORT=3000 \
    LIGHTFUSE_DATA_DIR=/data
# A fixed numeric uid/gid so Kubernetes' runAsNonRoot can verify it and fsGroup can match it.
RUN groupadd --system --gid 10001 lightfuse \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin lightfuse \
 && mkdir /data \
 && chown 10001:10001 /data
COPY --from=build /opt/lightfuse /opt/lightfuse
USER 10001:10001
WORKDIR /data
# The embedded SQLite database, the generated secrets and local media live here.
VOLUME ["/data"]
# 4317: OTLP/gRPC, served only when LIGHTFUSE_OTLP_GRPC_PORT=4317 is set
EXPOSE 3000 4317
# The slim image has no curl; Python's own urllib does the probe (non-2xx raises, so the exit code is 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/public/health' % os.environ.get('PORT', '3000'), timeout=4)"]
ENTRYPOINT ["lightfuse"]
CMD ["serve"]
