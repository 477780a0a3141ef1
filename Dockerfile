FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY allegro_sync ./allegro_sync
RUN python -m venv /opt/allegro-sync/venv \
 && /opt/allegro-sync/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /nonexistent --shell /usr/sbin/nologin allegro-sync
COPY --from=build /opt/allegro-sync/venv /opt/allegro-sync/venv
ENV PATH=/opt/allegro-sync/venv/bin:$PATH \
    ALLEGRO_SYNC_HTTP_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
USER allegro-sync
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz').status == 200 else 1)"
ENTRYPOINT ["allegro-sync"]
CMD ["run"]
