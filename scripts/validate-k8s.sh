#!/usr/bin/env bash
# Every object `postgres-operator render` produces for a matrix of cluster
# options, and everything under deploy/, validated against the real
# Kubernetes schemas (kubernetes-validate --strict) for 1.32 and for the
# newest version the package knows.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh --test
# Through the module, so it works wherever pip put the console script.
validate() { python3 -m kubernetes_validate "$@"; }
cargo build --locked --bin postgres-operator -q
bin="${CARGO_TARGET_DIR:-target}/debug/postgres-operator"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

cluster() { # name, extra spec lines
  cat <<YAML
apiVersion: pgo.dev/v1
kind: Pgcluster
metadata:
  name: $1
spec:
  port: 5432
  strategy: "1"
  database: userdb
  user: testuser
  primaryStorage: { size: 1G }
  replicaStorage: { size: 2Gi, storageClass: fast }
$2
YAML
}
cluster plain "" >"$out/plain.in"
cluster replicas "  replicas: 2" >"$out/replicas.in"
cluster pinned "  replicas: 1
  nodeName: kubeadm-node2" >"$out/pinned.in"
cluster shared "  replicas: 1
  pvcName: shared-data" >"$out/shared.in"
cluster custom "  customConfig: olap" >"$out/custom.in"
cluster metrics "  metrics: true
  replicas: 1" >"$out/metrics.in"
# Storage configs of pgo.yaml (3.4's NFS example: a supplemental group;
# a class with an fsGroup; a slow class for the backups).
storage_cluster() {
  cluster storage "  replicas: 1
  backupStorage: { size: 5Gi, storageClass: slow, config: backups }
  backrest: { archiveTimeoutSeconds: 60, retentionFull: 2 }
  resources: { requests: { cpu: 250m, memory: 256Mi }, limits: { cpu: 250m, memory: 256Mi } }" |
    sed -e 's/^  primaryStorage: .*/  primaryStorage: { size: 3G, accessMode: ReadWriteOnce, supplementalGroups: [65534], config: nfsstorage }/' \
        -e 's/^  replicaStorage: .*/  replicaStorage: { size: 2Gi, storageClass: fast, fsGroup: 26, config: storageos }/'
}
storage_cluster >"$out/storage.in"
cluster archived "  replicas: 1
  backrest: { archiveTimeoutSeconds: 60, retentionFull: 2 }" >"$out/archived.in"
cluster everything "  replicas: 3
  nodeName: kubeadm-node2
  customConfig: olap
  metrics: true
  syncReplication: true
  autofail: true
  backrest: { archiveTimeoutSeconds: 60, retentionFull: 2, retentionDiff: 3 }" >"$out/everything.in"
for f in "$out"/*.in; do
  extra=()
  if [ "$(basename "$f")" = everything.in ]; then extra=(--priority-class postgres-critical --disable-fs-group); fi
  "$bin" render -f "$f" --with-jobs "${extra[@]}" >"${f%.in}.yaml"
done

files=("$out"/*.yaml deploy/namespace.yaml deploy/rbac.yaml deploy/watched-namespace.yaml deploy/operator.yaml deploy/operator-conf.yaml deploy/crds/pgo-crds.yaml)
rendered=$(cat "$out"/*.yaml | grep -c '^kind:')
deployed=$(cat deploy/namespace.yaml deploy/rbac.yaml deploy/watched-namespace.yaml deploy/operator.yaml deploy/operator-conf.yaml deploy/crds/pgo-crds.yaml | grep -c '^kind:')
newest=$(validate --version)
for version in 1.32.0 "$newest"; do
  validate --strict --quiet -k "$version" "${files[@]}"
done
cases=$(ls "$out"/*.in | wc -l)
echo "validate-k8s: $((rendered + deployed)) objects ($rendered rendered in $cases cases, $deployed under deploy/) passed strict validation against Kubernetes 1.32.0 and $newest"
