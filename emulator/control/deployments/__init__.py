"""Guarded deployments: blue/green traffic shifting, rolling updates, baking periods and auto-rollback."""
