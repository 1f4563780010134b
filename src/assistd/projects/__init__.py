"""``GET /v1/project``: the project the caller's key belongs to."""
