"""The control plane: a versioned FastAPI app with API keys and roles, Prometheus metrics and a
dashboard. Never imports torch or the ML layers."""

from enchant_worker.api.app import create_app

__all__ = ["create_app"]
