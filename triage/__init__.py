"""triage: Slack-first SA request intake (Slack modal -> GitLab triage board, with SLAs)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("triage")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"
