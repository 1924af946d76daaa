# triage: one image for the web process and the worker (see docker-compose.yml and the Procfile).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY blocks ./blocks
COPY triage ./triage
RUN pip install . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin triage \
    && rm -rf /app/build /app/*.egg-info

# Non-root; the app writes nothing in its working directory (use PostgreSQL via DATABASE_URL, or mount a
# volume for a SQLite file). The config file is read from ./triage.toml there (mount it, or set TRIAGE_CONFIG).
USER triage
ENV PORT=8000
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=4)"]

# The Procfile's web command; the worker runs in-process unless TRIAGE_EMBEDDED_WORKER=false.
CMD ["sh", "-c", "exec triage serve --host 0.0.0.0 --port ${PORT:-8000}"]
