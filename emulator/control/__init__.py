"""Resource state and lifecycle: models, endpoint configs, endpoints and tags, kept in SQLite."""
