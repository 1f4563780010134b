"""``GET /v1/models``: the models the configured upstreams list, as OpenAI listed its own."""
