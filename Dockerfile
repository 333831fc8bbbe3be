# Changzhou veterans affairs statistics API.
# Build: docker build -t statsapi .   Run: docker run -p 8000:8000 -v statsapi-data:/data statsapi
# Point DATABASE_URL at PostgreSQL to run several containers against one database.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite:////data/statsapi.sqlite3 \
    WORKERS=2

RUN useradd --create-home --uid 10001 statsapi \
    && mkdir /data \
    && chown statsapi:statsapi /data

WORKDIR /srv/statsapi

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
# Editable: the app finds alembic.ini, migrations/ and seed/ beside its package.
RUN pip install --no-cache-dir -e .
COPY migrations ./migrations
COPY seed ./seed

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# Migrate, load the seed (idempotent), then serve with several workers.
CMD ["sh", "-c", "statsapi migrate && statsapi seed && exec statsapi serve --host 0.0.0.0 --port 8000 --workers \"$WORKERS\""]
