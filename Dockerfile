# kinerja-rules as a container: the service on port 8000, the policies folder as a volume.
#
#   docker build -t kinerja-rules .
#   docker run -p 8000:8000 -v "$PWD/policies:/policies:ro" \
#     -v /etc/kinerja/keys.yaml:/run/kinerja/keys.yaml:ro kinerja-rules
#
# The service listens on every address inside the container, so it needs API keys: it
# reads them from /run/kinerja/keys.yaml (KINERJA_API_KEYS_FILE) and refuses to start
# without them. Extra options go after the image name (`--workers 2`, say). Decisions are
# kept in the /data volume, or in PostgreSQL with `--store postgresql://…` (psycopg is installed).

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE requirements-server.lock ./
COPY kinerja_rules ./kinerja_rules
COPY plugins ./plugins
# The locked versions, hashes checked (the service's share of requirements.lock), then the
# package and its plugins with nothing more.
RUN python -m venv /opt/kinerja \
 && /opt/kinerja/bin/pip install --no-cache-dir --require-hashes -r requirements-server.lock \
 && /opt/kinerja/bin/pip install --no-cache-dir --no-deps --no-build-isolation . ./plugins/*/ \
 && /opt/kinerja/bin/pip check

FROM python:3.12-slim
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin kinerja
RUN mkdir /data && chown kinerja /data  # the decision store (SQLite), kept on a volume
COPY --from=build /opt/kinerja /opt/kinerja
COPY policies /policies
ENV PATH=/opt/kinerja/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    KINERJA_API_KEYS_FILE=/run/kinerja/keys.yaml \
    KINERJA_DATA=/data
USER kinerja
VOLUME ["/policies", "/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2).status != 200)"]
ENTRYPOINT ["kinerja", "serve", "--host", "0.0.0.0", "--port", "8000", "--policies", "/policies"]
