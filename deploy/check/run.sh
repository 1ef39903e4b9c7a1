#!/usr/bin/env bash
# `make deploy-check`: what an ops team applies is checked without a cluster or a Docker engine.
#
#   1. kustomize renders deploy/kubernetes/overlays/{local,production}
#   2. validate_manifests.py: Kubernetes API schemas (strict), KEDA and Prometheus Operator CRD
#      schemas, project rules; on the overlays and on otel-collector.yaml
#   3. podsecurity: the upstream Pod Security "restricted" evaluator on every pod template
#   4. docker compose config on compose.kafka.yml (with and without the services profile)
#   5. hadolint on deploy/docker/Dockerfile
#   6. the monitoring pack (components/monitoring): `promtool check rules` on the alert rules and
#      on every dashboard query, `promtool test rules` (deploy/check/alert-tests.yaml), the
#      dashboard's shape (monitoring.py) and, with the project's venv, that every query and
#      rule names a metric the services export (tests/unit/deploy/test_monitoring_pack.py)
#   7. with the project's venv, the rendered overlays and the compose file against the code
#      (tests/unit/deploy/test_rendered_manifests.py): every variable a workload gets is a
#      setting of its process with a value it accepts, probes/ports/scraping hit what it serves,
#      KEDA triggers name its group and topics, the topics Job's durability, SASL principals
#
# Tools come from PyPI (tool venv) and the Go module proxy (podsecurity, and kustomize when no
# kubectl is on PATH), cached under .cache/deploy-check/; a warm run takes a few seconds.
# promtool comes from Debian's `prometheus` package: installed here with apt-get when missing
# and running as root (a fresh CI machine), otherwise the check fails saying what to install.
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE=${DEPLOY_CHECK_CACHE:-.cache/deploy-check}
KUBERNETES_VERSION=${KUBERNETES_VERSION:-1.33}
KUSTOMIZE_VERSION=v5.7.1
mkdir -p "$CACHE/bin" "$CACHE/rendered"
CACHE=$(cd "$CACHE" && pwd)
# -modcacherw: the module cache stays deletable (rm -rf .cache/deploy-check).
export GOTOOLCHAIN=local GOPATH="$CACHE/go" GOCACHE="$CACHE/go-build" GOBIN="$CACHE/bin" GOFLAGS=-modcacherw

# --- tools ---------------------------------------------------------------------------------
venv="$CACHE/venv"
stamp="$venv/.requirements-$(sha256sum deploy/check/requirements.txt | cut -c1-16)"
if [ ! -e "$stamp" ]; then
    echo "deploy-check: installing the tool venv (PyPI)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r deploy/check/requirements.txt
    touch "$stamp"
fi

podsecurity="$CACHE/bin/podsecurity"
source_stamp="$CACHE/bin/.podsecurity-$(cat deploy/check/podsecurity/{go.mod,go.sum,main.go} | sha256sum | cut -c1-16)"
if [ ! -e "$source_stamp" ]; then
    echo "deploy-check: building podsecurity (k8s.io/pod-security-admission, Go module proxy)"
    (cd deploy/check/podsecurity && go build -o "$podsecurity" .)
    rm -f "$CACHE"/bin/.podsecurity-* && touch "$source_stamp"
fi

if command -v kubectl > /dev/null && [ -z "${DEPLOY_CHECK_GO_KUSTOMIZE:-}" ]; then
    kustomize=(kubectl kustomize)
else
    if [ ! -x "$CACHE/bin/kustomize" ]; then
        echo "deploy-check: building kustomize $KUSTOMIZE_VERSION (Go module proxy)"
        go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
    fi
    kustomize=("$CACHE/bin/kustomize" build)
fi

install_promtool() {
    command -v promtool > /dev/null && return 0
    if ! command -v apt-get > /dev/null; then
        echo "deploy-check: FAILED: promtool is missing and apt-get is not available;" \
             "install Prometheus's promtool (Debian: apt-get install prometheus)" >&2
        return 1
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "deploy-check: FAILED: promtool is missing and this is not root;" \
             "run: sudo apt-get install -y --no-install-recommends prometheus" >&2
        return 1
    fi
    echo "deploy-check: installing Debian's prometheus package for promtool (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus > /dev/null
    if ! command -v promtool > /dev/null; then
        echo "deploy-check: FAILED: Debian's prometheus package is installed but has no" \
             "promtool on PATH (dpkg -L prometheus | grep promtool); the alert rules are NOT checked" >&2
        return 1
    fi
}
install_promtool

# --- checks --------------------------------------------------------------------------------
for overlay in local production; do
    echo "== kustomize: overlays/$overlay (${kustomize[*]})"
    "${kustomize[@]}" "deploy/kubernetes/overlays/$overlay" > "$CACHE/rendered/$overlay.yaml"
done

echo "== Kubernetes $KUBERNETES_VERSION + KEDA schemas, project rules"
"$venv/bin/python" deploy/check/validate_manifests.py --kubernetes-version "$KUBERNETES_VERSION" \
    "$CACHE/rendered/local.yaml"
"$venv/bin/python" deploy/check/validate_manifests.py --kubernetes-version "$KUBERNETES_VERSION" \
    --no-secrets "$CACHE/rendered/production.yaml"

"$venv/bin/python" deploy/check/validate_manifests.py --kubernetes-version "$KUBERNETES_VERSION" \
    --no-secrets deploy/kubernetes/otel-collector.yaml

echo "== Pod Security Standard: restricted"
"$podsecurity" -level restricted "$CACHE/rendered/local.yaml" "$CACHE/rendered/production.yaml" \
    deploy/kubernetes/otel-collector.yaml

echo "== docker compose config: compose.kafka.yml"
"$venv/bin/docker-compose" -f compose.kafka.yml config --quiet
"$venv/bin/docker-compose" -f compose.kafka.yml --profile services config --quiet
echo "compose.kafka.yml: valid (infrastructure and --profile services)"

echo "== hadolint: deploy/docker/Dockerfile"
"$venv/bin/hadolint" deploy/docker/Dockerfile
echo "deploy/docker/Dockerfile: no findings"

echo "== monitoring: alert rules and dashboard ($(promtool --version 2>&1 | head -1))"
monitoring="$CACHE/rendered/monitoring"
"$venv/bin/python" deploy/check/monitoring.py "$CACHE/rendered/production.yaml" \
    deploy/kubernetes/components/monitoring/agent-runtime-dashboard.json "$monitoring"
promtool check rules "$monitoring/agent-runtime-rules.yaml"
promtool check rules "$monitoring/dashboard-queries.yaml"
cp deploy/check/alert-tests.yaml "$monitoring/alert-tests.yaml"
promtool test rules "$monitoring/alert-tests.yaml"
if [ ! -x .venv/bin/python ]; then
    echo "deploy-check: FAILED: the project's venv is missing (run \`make install\`, or \`make deploy-check\`);" \
         "the dashboard's and rules' metric names are NOT checked" >&2
    exit 1
fi
.venv/bin/python -m pytest -q -p no:cacheprovider tests/unit/deploy/test_monitoring_pack.py

echo "== the rendered overlays and compose.kafka.yml against the services' settings"
DEPLOY_CHECK_RENDERED="$CACHE/rendered" .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/unit/deploy/test_rendered_manifests.py
echo "deploy-check: passed"
