# The base image is named by tag, not pinned by digest: a digest can only be learnt from the
# registry (this repository is built where it cannot be checked), and a wrong one breaks the
# build. To pin it for a reproducible, tamper-evident build, resolve the digest once and put it
# after the tag in both FROM lines, e.g.
#   docker buildx imagetools inspect python:3.11-slim   # "Digest: sha256:..."
#   FROM python:3.11-slim@sha256:<digest> AS build
# and let Dependabot / Renovate move it. pyproject.toml's floors keep releases with known
# advisories out of the packages installed here.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY allegro_sync ./allegro_sync
RUN python -m venv /opt/allegro-sync/venv \
 && /opt/allegro-sync/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /nonexistent --shell /usr/sbin/nologin allegro-sync
COPY --from=build /opt/allegro-sync/venv /opt/allegro-sync/venv
# 0.0.0.0 inside the container, plain HTTP: publish the port to a TLS-terminating reverse proxy
# only, never to the open network (README "Security").
ENV PATH=/opt/allegro-sync/venv/bin:$PATH \
    ALLEGRO_SYNC_HTTP_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
USER allegro-sync
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz').status == 200 else 1)"
ENTRYPOINT ["allegro-sync"]
CMD ["run"]
