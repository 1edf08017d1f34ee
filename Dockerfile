# syntax=docker/dockerfile:1
# canary's controller image. Build: docker build -t canary:dev .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the project's wheel and every dependency's, nothing installed ---------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY canary ./canary
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- final: the wheels installed into a venv, no build tools, a non-root user ----------
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="canary" \
      org.opencontainers.image.description="Progressive delivery for Kubernetes with statistical guarantees" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/canary-dev/canary"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/canary/bin:$PATH
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/canary \
 && /opt/canary/bin/pip install --no-cache-dir --no-index --find-links /wheels canary \
 && /opt/canary/bin/pip uninstall --yes pip setuptools wheel
RUN groupadd --system --gid 10001 canary \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin canary
USER 10001:10001
# Kubernetes probes (/healthz, /readyz) are used instead of a HEALTHCHECK.
EXPOSE 8080 8081
STOPSIGNAL SIGTERM
ENTRYPOINT ["canary"]
CMD ["run"]
