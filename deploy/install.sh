#!/bin/sh
# The code location's install steps, run by deploy/Dockerfile and, into a fresh virtualenv,
# by smartstream_assets_tests/test_deploy_image.py: torch's CPU build first (else a
# dependency pulls the multi-GB CUDA build), then the package with its Kubernetes extra,
# then a check that the code location loads.
#   PYTHON           the interpreter to install into (default: python3)
#   TORCH_INDEX_URL  where torch comes from (the Dockerfile: PyTorch's CPU index; unset: pip's own config)
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH=2.13.0
PIP="$PYTHON -m pip install --no-cache-dir --disable-pip-version-check"
$PIP --upgrade pip
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  $PIP --index-url "$TORCH_INDEX_URL" "torch==$TORCH"
else
  $PIP "torch==$TORCH"
fi
$PIP ".[k8s]"
# a broken image fails its build, not its first run: every table, domain, job and sensor
# loads, from the installed package (not this source folder: hence the cd)
cd /
HF_HUB_OFFLINE=1 "$PYTHON" -c "from smartstream_assets.definitions import defs; defs.get_repository_def().load_all_definitions(); print('code location loads')"
