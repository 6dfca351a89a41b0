# Triptych upstream stub (package upstream_stub, part of the gateway-core distribution): the
# HTTP service the gateways forward to in tests, load tests and the compose stack.
#
# Build from the repository root:
#     docker build -f shared/upstream_stub.Dockerfile -t triptych/upstream-stub .
ARG PYTHON_VERSION=3.11

# Build stage: a virtualenv holding gateway-core (which carries upstream_stub), pinned.
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY constraints.txt ./
COPY shared/ shared/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt ./shared

# Runtime stage: the virtualenv only, an unprivileged user.
FROM python:${PYTHON_VERSION}-slim
RUN groupadd --system --gid 10001 stub \
 && useradd --system --no-log-init --uid 10001 --gid stub \
      --home-dir /nonexistent --shell /usr/sbin/nologin stub
COPY --from=build /opt/venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
EXPOSE 9000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/_stub/health', timeout=2)"]
CMD ["python", "-m", "upstream_stub", "--host", "0.0.0.0", "--port", "9000"]
