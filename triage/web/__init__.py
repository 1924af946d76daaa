"""The web process: Slack and GitLab endpoints, health, and the leaders' dashboard."""

from triage.web.main import app, create_app

__all__ = ["app", "create_app"]
