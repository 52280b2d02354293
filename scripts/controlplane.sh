# shellcheck shell=bash
# The local Kubernetes control plane of scripts/stack (sourced by it):
# etcd, kube-apiserver (RBAC, a service-account issuer and signing key,
# default admission), kube-controller-manager (garbage collector,
# Deployment/ReplicaSet, service-account token and the other default
# controllers), kube-scheduler and kwok simulating nodes, so the pods of
# Deployments turn Running/Ready without containers. Binaries come from
# scripts/controlplane-build (built once per machine, cached outside the
# clone). Everything listens on loopback; certificates come from a throwaway
# CA in $STATE/pki.
#
# Identities: the admin kubeconfig ($STATE/kubeconfig, O=system:masters) is
# for people and test set-up; the controller-manager, the scheduler and kwok
# each have their own client certificate, so RBAC treats them as in a cluster.

CONTROLPLANE_COMPONENTS=(etcd apiserver controller-manager scheduler kwok)
# Simulated nodes: enough for two operator replicas and the services' pods.
KWOK_NODES="${URR_KWOK_NODES:-3}"

controlplane_bin() {
  [ -n "${CONTROLPLANE_BIN:-}" ] || CONTROLPLANE_BIN="$(cd "$SCRIPTS/.." && scripts/controlplane-build)" \
    || die "the control plane could not be built (scripts/controlplane-build; see its message above)"
  printf '%s\n' "$CONTROLPLANE_BIN"
}

# One client or server certificate signed by the stack's Kubernetes CA.
pki_cert() {
  local name=$1 subject=$2 ext=$3 dir="$STATE/pki"
  [ -s "$dir/$name.pem" ] && return 0
  openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$dir/$name.key" -out "$dir/$name.csr" >/dev/null 2>&1
  printf '%s\n' "$ext" >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 30 -extfile "$dir/$name.ext" -out "$dir/$name.pem" >/dev/null 2>&1
  chmod 600 "$dir/$name.key"
}

ensure_pki() {
  local dir="$STATE/pki"
  mkdir -p "$dir"
  if [ ! -s "$dir/ca.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=urr-stack kubernetes CA" \
      -keyout "$dir/ca.key" -out "$dir/ca.pem" >/dev/null 2>&1
    # The service-account token signing key pair (issuer: the API server).
    openssl genrsa -out "$dir/sa.key" 2048 >/dev/null 2>&1
    openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" >/dev/null 2>&1
    chmod 600 "$dir/ca.key" "$dir/sa.key"
  fi
  local client='basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth'
  pki_cert apiserver "/CN=kube-apiserver" 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth'
  pki_cert admin "/O=system:masters/CN=urr-stack-admin" "$client"
  pki_cert controller-manager "/CN=system:kube-controller-manager" "$client"
  pki_cert scheduler "/CN=system:kube-scheduler" "$client"
  # kwok writes Node and Pod status, as kubelets do: bound to cluster-admin below.
  pki_cert kwok "/CN=urr-stack-kwok" "$client"
}

# A kubeconfig for one identity.
write_kubeconfig() {
  local name=$1 file=$2 port
  port="$(port_of apiserver)"
  cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: urr-stack
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: $STATE/pki/ca.pem
users:
- name: $name
  user:
    client-certificate: $STATE/pki/$name.pem
    client-key: $STATE/pki/$name.key
contexts:
- name: urr-stack
  context: { cluster: urr-stack, user: $name }
current-context: urr-stack
KUBECONFIG
  chmod 600 "$file"
}

kubectl_admin() { "$(controlplane_bin)/kubectl" --kubeconfig "$STATE/kubeconfig" "$@"; }

start_etcd() {
  local bin port peer
  bin="$(controlplane_bin)"
  port="$(port_of etcd)"
  peer="$(port_of etcd-peer)"
  mkdir -p "$STATE/etcd"
  nohup "$bin/etcd" --name urr-stack --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "urr-stack=http://127.0.0.1:$peer" \
    --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn >"$STATE/etcd.log" 2>&1 &
  echo $! >"$STATE/etcd.pid"
  wait_for etcd "curl -fsS http://127.0.0.1:$port/health | grep -q true"
}

start_apiserver() {
  local bin port
  bin="$(controlplane_bin)"
  port="$(port_of apiserver)"
  ensure_pki
  # RBAC only (no AlwaysAllow): whatever a role does not grant is refused, as
  # in a cluster. Default admission plugins (ServiceAccount, NamespaceLifecycle,
  # LimitRanger, ResourceQuota, ...) and OwnerReferencesPermissionEnforcement
  # (an owner reference with blockOwnerDeletion needs update on the owner's
  # finalizers, as hardened clusters check it). An audit log of every request made by a
  # service account (metadata only: never a Secret's value), so a test can
  # compare what the operator asked for, and what it was refused, with what
  # the chart's roles grant.
  cat >"$STATE/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
POLICY
  nohup "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$(port_of etcd)" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" \
    --tls-cert-file "$STATE/pki/apiserver.pem" --tls-private-key-file "$STATE/pki/apiserver.key" \
    --client-ca-file "$STATE/pki/ca.pem" \
    --authorization-mode RBAC \
    --service-account-issuer "https://127.0.0.1:$port" \
    --service-account-key-file "$STATE/pki/sa.pub" \
    --service-account-signing-key-file "$STATE/pki/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --audit-policy-file "$STATE/audit-policy.yaml" --audit-log-path "$STATE/audit.log" \
    --audit-log-format json --audit-log-maxsize 200 --audit-log-maxbackup 1 \
    --allow-privileged=false \
    --enable-admission-plugins OwnerReferencesPermissionEnforcement \
    --profiling=false \
    --v 1 >"$STATE/apiserver.log" 2>&1 &
  echo $! >"$STATE/apiserver.pid"
  write_kubeconfig admin "$STATE/kubeconfig"
  wait_for apiserver "kubectl_admin get --raw /readyz"
}

start_controller-manager() {
  local bin
  bin="$(controlplane_bin)"
  write_kubeconfig controller-manager "$STATE/controller-manager.kubeconfig"
  # Each controller with its own service account (as kubeadm runs it): the
  # token controller signs their tokens with the stack's key.
  nohup "$bin/kube-controller-manager" \
    --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$(port_of controller-manager)" \
    --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file "$STATE/pki/sa.key" --root-ca-file "$STATE/pki/ca.pem" \
    --cluster-signing-cert-file "$STATE/pki/ca.pem" --cluster-signing-key-file "$STATE/pki/ca.key" \
    --controllers '*,-bootstrapsigner,-tokencleaner' \
    --concurrent-gc-syncs 5 --v 1 >"$STATE/controller-manager.log" 2>&1 &
  echo $! >"$STATE/controller-manager.pid"
  wait_for controller-manager "curl -fsSk https://127.0.0.1:$(port_of controller-manager)/healthz | grep -q ok"
}

start_scheduler() {
  local bin
  bin="$(controlplane_bin)"
  write_kubeconfig scheduler "$STATE/scheduler.kubeconfig"
  nohup "$bin/kube-scheduler" \
    --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$(port_of scheduler)" \
    --leader-elect=false --v 1 >"$STATE/scheduler.log" 2>&1 &
  echo $! >"$STATE/scheduler.pid"
  wait_for scheduler "curl -fsSk https://127.0.0.1:$(port_of scheduler)/healthz | grep -q ok"
}

start_kwok() {
  local bin i
  bin="$(controlplane_bin)"
  write_kubeconfig kwok "$STATE/kwok.kubeconfig"
  kubectl_admin create clusterrolebinding urr-stack-kwok --clusterrole cluster-admin --user urr-stack-kwok \
    --dry-run=client -o yaml | kubectl_admin apply -f - >/dev/null
  # kwok plays the kubelets of the nodes annotated kwok.x-k8s.io/node=fake,
  # with its default stages: pods scheduled there turn Running and Ready. It
  # renews each node's Lease as a kubelet does: without them the
  # controller-manager's node lifecycle controller finds every node silent
  # after ~50 s and marks every pod not Ready.
  nohup "$bin/kwok" --kubeconfig "$STATE/kwok.kubeconfig" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-ip 127.0.0.1 --cidr 10.244.0.0/16 \
    --node-lease-duration-seconds 40 \
    --server-address "127.0.0.1:$(port_of kwok)" >"$STATE/kwok.log" 2>&1 &
  echo $! >"$STATE/kwok.pid"
  wait_for kwok "curl -fsS http://127.0.0.1:$(port_of kwok)/healthz"
  for i in $(seq 0 $((KWOK_NODES - 1))); do
    kubectl_admin apply -f - >/dev/null <<NODE
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: { kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0" }
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
    topology.kubernetes.io/zone: zone-$((i % 3))
status:
  allocatable: { cpu: "32", memory: 256Gi, pods: "110" }
  capacity: { cpu: "32", memory: 256Gi, pods: "110" }
NODE
  done
  wait_for kwok kwok_nodes_ready
}

kwok_nodes_ready() {
  local ready
  ready="$(kubectl_admin get nodes -l type=kwok \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)"
  [ "$ready" = "$KWOK_NODES" ]
}
