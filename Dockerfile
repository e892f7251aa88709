# The FactuSOL <-> Clientify sync for many companies: Meltano, the four connectors (installed at
# build time) and the Dagster orchestrator. One image, two services from it: the Dagster daemon
# (default command: schedules, run queue, runs) and the webserver. No secret is built in: the
# tenants file names the variables, which come from the environment at run time (README,
# "Running many companies").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    MELTANO_SEND_ANONYMOUS_USAGE_STATS=false \
    PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/var/lib/fcsync/dagster \
    FCSYNC_TENANTS_FILE=/etc/fcsync/tenants.yaml

RUN groupadd --system --gid 10001 fcsync \
    && useradd --system --uid 10001 --gid fcsync --home-dir /opt/fcsync --no-create-home \
       --shell /usr/sbin/nologin fcsync \
    && python -m venv /opt/venv \
    && install -d -o fcsync -g fcsync -m 0755 /opt/fcsync \
    && install -d -o fcsync -g fcsync -m 0700 /var/lib/fcsync /var/lib/fcsync/dagster

# The final project directory: `meltano install` resolves the plugins' `-e ./...` pip_urls
# against the working directory and writes this absolute path into their venvs.
WORKDIR /opt/fcsync

# Orchestrator and Meltano (root-owned, read-only for the service user).
COPY orchestration/ orchestration/
RUN pip install -r orchestration/deploy/requirements.txt

# The Meltano project and its plugins' sources.
COPY --chown=fcsync:fcsync meltano.yml ./
COPY --chown=fcsync:fcsync packages/factusol_api/ packages/factusol_api/
COPY --chown=fcsync:fcsync packages/clientify_api/ packages/clientify_api/
COPY --chown=fcsync:fcsync packages/customer_sync/ packages/customer_sync/
COPY --chown=fcsync:fcsync packages/sync_ledger/ packages/sync_ledger/
COPY --chown=fcsync:fcsync packages/sync_report/ packages/sync_report/
COPY --chown=fcsync:fcsync packages/target_runtime/ packages/target_runtime/
COPY --chown=fcsync:fcsync packages/customer_records/ packages/customer_records/
COPY --chown=fcsync:fcsync tap-factusol/ tap-factusol/
COPY --chown=fcsync:fcsync tap-clientify/ tap-clientify/
COPY --chown=fcsync:fcsync target-clientify/ target-clientify/
COPY --chown=fcsync:fcsync target-factusol/ target-factusol/
COPY --chown=fcsync:fcsync orchestration/deploy/dagster.yaml /var/lib/fcsync/dagster/dagster.yaml

USER 10001:10001
# With MELTANO_DATABASE_URI unset, `meltano install` uses a throwaway SQLite file (deleted):
# the real system database is given at run time and may be unreachable from the build.
RUN meltano install \
    && rm -f .meltano/meltano.db

VOLUME ["/var/lib/fcsync"]
EXPOSE 3000
CMD ["dagster-daemon", "run", "-m", "fcsync_orchestration.definitions"]
