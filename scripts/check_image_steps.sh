#!/usr/bin/env bash
# The Dockerfile's install steps, run in a plain venv (no Docker daemon needed): copy the build
# context (.dockerignore applied by hand: tracked files only), install the image's Python set,
# `meltano install` at the copy's final path, then load the Dagster definitions and ask each
# plugin for its --about. Needs the package registry (like `docker build`). `make image-steps`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
app="$work/opt/fcsync"
mkdir -p "$app"
# The build context: tracked and new files, without what .dockerignore keeps out.
git ls-files --cached --others --exclude-standard -z \
  | grep -zv -E '^(\.meltano|\.venv|output|\.git|\.sandbox)/|^\.env$|^tenants\.yaml$' \
  | xargs -0 -I{} cp --parents {} "$app"
"$PYTHON" -m venv "$work/venv"
export PATH="$work/venv/bin:$PATH" PIP_DISABLE_PIP_VERSION_CHECK=1 UV_NO_CACHE=1
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false
unset MELTANO_DATABASE_URI VIRTUAL_ENV
cd "$app"
echo "== pip install -r orchestration/deploy/requirements.txt"
pip install -q -r orchestration/deploy/requirements.txt
echo "== meltano install (at $app)"
meltano install >/dev/null
rm -f .meltano/meltano.db
grep -h "$app" .meltano/*/*/venv/lib/python3.11/site-packages/*.pth | head -n 2
echo "== dagster definitions validate (tenants.example.yaml)"
FCSYNC_TENANTS_FILE=tenants.example.yaml dagster definitions validate \
  -m fcsync_orchestration.definitions 2>&1 | grep -iE "success|error|valid" | head -n 3
for plugin in tap-factusol tap-clientify target-clientify target-factusol; do
  meltano invoke "$plugin" --about --format=json >/dev/null 2>&1
  echo "$plugin --about: ok"
done
pip freeze | grep -iE "^(meltano|dagster|dagster-webserver|dagster-postgres|sqlalchemy|psycopg|psycopg2-binary)==" 
echo "image install steps: OK"
