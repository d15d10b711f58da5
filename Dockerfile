# Image of the dossier-stream commands (worker, simulate, publish, watch, dashboard,
# gateway), used by docker-compose.yml. Kafka and Redis come from their own images there.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DOSSIER_DATA_DIR=/home/dossier/worker

WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY domain ./domain
COPY common ./common
COPY producers ./producers
COPY stream_apps ./stream_apps
COPY dossier_stream ./dossier_stream
COPY dashboard ./dashboard
COPY gateway ./gateway
# uid and gid 10001: docker-compose.yml hands the secrets to this user and group.
RUN pip install . \
    && groupadd --gid 10001 dossier \
    && useradd --create-home --uid 10001 --gid 10001 dossier \
    && install -d -o dossier -g dossier /var/lib/dossier-gateway
# /var/lib/dossier-gateway: the gateway's tokens file (a named volume copies the owner).

USER dossier
CMD ["dossier-stream", "--help"]
