#!/usr/bin/env bash
# scripts/e2e/up.sh [STATE]
#
# Starts the end-to-end test's Kubernetes on 127.0.0.1 only, as host processes (no Docker):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok with
# one simulated node, the Flux source/kustomize/helm controllers (out of cluster, with a
# kubeconfig), and obol-git serving $STATE/repos/<name> at http://127.0.0.1:$GIT_PORT/<name>.git.
# Binaries come from scripts/e2e/setup.sh ($OBOL_E2E_PREFIX, default ~/.cache/obol-e2e).
#
# It writes $STATE/kubeconfig, $STATE/env (shell assignments the test reads) and $STATE/down.sh,
# which stops exactly the processes started here, by PID. The control plane's data is under
# $STATE (default /tmp/obol-e2e), wiped at each start so every run begins from an empty cluster.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
prefix=${OBOL_E2E_PREFIX:-$HOME/.cache/obol-e2e}
bin=$prefix/bin
state=${1:-${OBOL_E2E_STATE:-/tmp/obol-e2e}}

etcd_port=${ETCD_PORT:-23790}
apiserver_port=${APISERVER_PORT:-16443}
kcm_port=${KCM_PORT:-10257}
scheduler_port=${SCHEDULER_PORT:-10259}
kwok_port=${KWOK_PORT:-10247}
git_port=${GIT_PORT:-18080}
storage_port=${SC_STORAGE_PORT:-19090}

say() { printf '[e2e up %s] %s\n' "$(date +%T)" "$*" >&2; }
# setup.sh builds kubectl with the control plane; a fresh machine has none.
kubectl=$bin/kubectl
[ -x "$kubectl" ] || kubectl=$(command -v kubectl) || { say "no kubectl: run scripts/e2e/setup.sh"; exit 1; }

if [ -x "$state/down.sh" ]; then "$state/down.sh" >/dev/null 2>&1 || true; fi
for f in etcd kube-apiserver kwok source-controller kustomize-controller helm-controller; do
	[ -x "$bin/$f" ] || { say "missing $bin/$f: run scripts/e2e/setup.sh"; exit 1; }
done

rm -rf "$state/etcd" "$state/flux-storage" "$state/logs"
mkdir -p "$state"/{pki,logs,etcd,flux-storage,repos}
pids=$state/pids
: >"$pids"
kcfg=$state/kubeconfig
export KUBECONFIG=$kcfg

cat >"$state/down.sh" <<EOF
#!/usr/bin/env bash
# Stops the processes scripts/e2e/up.sh started (PIDs in $pids), newest first.
[ -f "$pids" ] || exit 0
tac "$pids" | while read -r pid name; do kill "\$pid" 2>/dev/null && echo "stopped \$name (\$pid)"; done
for _ in 1 2 3 4 5 6 7 8 9 10; do
	alive=0
	while read -r pid name; do kill -0 "\$pid" 2>/dev/null && alive=1; done <"$pids"
	[ \$alive = 0 ] && break
	sleep 0.5
done
while read -r pid name; do kill -9 "\$pid" 2>/dev/null || true; done <"$pids"
rm -f "$pids"
EOF
chmod +x "$state/down.sh"

start() { # start NAME CMD...
	local name=$1
	shift
	"$@" >"$state/logs/$name.log" 2>&1 &
	echo "$! $name" >>"$pids"
	say "started $name (pid $!)"
}
wait_for() { # wait_for WHAT SECONDS CMD...
	local what=$1 t=$2 t0=$SECONDS
	shift 2
	until timeout 10 "$@" >/dev/null 2>&1; do
		if ((SECONDS - t0 >= t)); then
			say "timed out waiting for $what; logs in $state/logs"
			tail -20 "$state"/logs/*.log >&2 || true
			exit 1
		fi
		sleep 0.2
	done
	say "$what ready after $((SECONDS - t0))s"
}

# Certificates (kept across runs): a CA, the apiserver's serving cert, an admin client cert
# (O=system:masters) and the service-account key pair.
p=$state/pki
if [ ! -f "$p/admin.crt" ]; then
	say "generating certificates"
	(
		cd "$p"
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=obol-e2e-ca" -keyout ca.key -out ca.crt 2>/dev/null
		printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' >apiserver.ext
		openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
		openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile apiserver.ext -out apiserver.crt 2>/dev/null
		echo "extendedKeyUsage=clientAuth" >client.ext
		openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=obol-admin" -keyout admin.key -out admin.csr 2>/dev/null
		openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile client.ext -out admin.crt 2>/dev/null
		openssl genrsa -out sa.key 2048 2>/dev/null
		openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
	)
fi
rm -f "$kcfg"
"$kubectl" config set-cluster obol-e2e --server="https://127.0.0.1:$apiserver_port" --certificate-authority="$p/ca.crt" --embed-certs=true >/dev/null
"$kubectl" config set-credentials obol-admin --client-certificate="$p/admin.crt" --client-key="$p/admin.key" --embed-certs=true >/dev/null
"$kubectl" config set-context obol-e2e --cluster=obol-e2e --user=obol-admin >/dev/null
"$kubectl" config use-context obol-e2e >/dev/null

t0=$SECONDS
start etcd "$bin/etcd" --name obol-e2e --data-dir "$state/etcd" \
	--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
	--listen-peer-urls "http://127.0.0.1:$((etcd_port + 10))" --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 10))" \
	--initial-cluster "obol-e2e=http://127.0.0.1:$((etcd_port + 10))" --listen-metrics-urls "http://127.0.0.1:$((etcd_port + 2))" \
	--unsafe-no-fsync
wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"

# --endpoint-reconciler-type=none: the default reconciler refuses a loopback advertise address.
start kube-apiserver "$bin/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" \
	--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$apiserver_port" \
	--tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" --client-ca-file="$p/ca.crt" \
	--service-account-issuer=https://kubernetes.default.svc.cluster.local \
	--service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
	--service-cluster-ip-range=10.96.0.0/16 --endpoint-reconciler-type=none \
	--authorization-mode=Node,RBAC --allow-privileged=true --profiling=false
wait_for kube-apiserver 120 "$kubectl" get --raw /readyz

# kube-controller-manager and kube-scheduler turn Deployments into Pods bound to the kwok node;
# without them (OBOL_E2E_MINIMAL=1, or not built yet) Flux still reconciles, nothing runs.
minimal=${OBOL_E2E_MINIMAL:-0}
[ -x "$bin/kube-controller-manager" ] && [ -x "$bin/kube-scheduler" ] || minimal=1
if [ "$minimal" = 0 ]; then
start kube-controller-manager "$bin/kube-controller-manager" \
	--kubeconfig="$kcfg" --authentication-kubeconfig="$kcfg" --authorization-kubeconfig="$kcfg" \
	--bind-address=127.0.0.1 --secure-port="$kcm_port" --leader-elect=false --use-service-account-credentials=false \
	--service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" \
	--cluster-signing-cert-file="$p/ca.crt" --cluster-signing-key-file="$p/ca.key"
start kube-scheduler "$bin/kube-scheduler" --kubeconfig="$kcfg" \
	--authentication-kubeconfig="$kcfg" --authorization-kubeconfig="$kcfg" \
	--bind-address=127.0.0.1 --secure-port="$scheduler_port" --leader-elect=false
else
	say "WARNING: no kube-controller-manager/kube-scheduler: Deployments will not get Pods"
fi

# kwok v0.8.0 has no built-in stages: give it the module's fast node/pod stages.
stages=$state/kwok-stages.yaml
kwokdir=$(cd "$root" && go mod download -json sigs.k8s.io/kwok@v0.8.0 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
for s in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
	pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
	cat "$kwokdir/kustomize/stage/$s"
	echo "---"
done >"$stages"
start kwok "$bin/kwok" --config="$stages" --kubeconfig="$kcfg" \
	--manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
	--cidr=10.0.0.1/24 --node-ip=10.0.0.1 --node-lease-duration-seconds=40 --server-address="127.0.0.1:$kwok_port"
[ "$minimal" = 1 ] || wait_for "default ServiceAccount" 60 "$kubectl" -n default get serviceaccount default
"$kubectl" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {node.alpha.kubernetes.io/ttl: "0", kwok.x-k8s.io/node: fake}
  # The control-plane label: like a k3d server node, it is where the git endpoint may run.
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-0, kubernetes.io/os: linux, kubernetes.io/arch: amd64, node-role.kubernetes.io/control-plane: "true"}
status:
  allocatable: {cpu: "64", memory: 512Gi, pods: "1000"}
  capacity: {cpu: "64", memory: 512Gi, pods: "1000"}
EOF
wait_for "kwok node Ready" 60 "$kubectl" wait --for=condition=Ready node/kwok-node-0 --timeout=1s

# The git endpoint, built from this checkout.
(cd "$root" && CGO_ENABLED=0 go build -o "$state/obol-git" ./cmd/obol-git)
start obol-git "$state/obol-git" --root "$state/repos" --listen "127.0.0.1:$git_port"
wait_for obol-git 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$git_port"

# The Flux controllers watch their kinds from the start, so their CRDs go in first, applied
# with obol's field manager (what `obol stack up` applies them with). `stack up` applies
# everything else, Namespace included.
"$kubectl" apply --server-side --field-manager=obol -f "$root/clusters/flux-system/crds/" >/dev/null
"$kubectl" wait --for=condition=Established crd --all --timeout=60s >/dev/null
common=(--watch-all-namespaces=true --enable-leader-election=false --log-encoding=console)
start source-controller env KUBECONFIG="$kcfg" RUNTIME_NAMESPACE=flux-system "$bin/source-controller" "${common[@]}" \
	--storage-path="$state/flux-storage" --storage-addr="127.0.0.1:$storage_port" --storage-adv-addr="127.0.0.1:$storage_port" \
	--metrics-addr=127.0.0.1:18081 --health-addr=127.0.0.1:19441
start kustomize-controller env KUBECONFIG="$kcfg" RUNTIME_NAMESPACE=flux-system "$bin/kustomize-controller" "${common[@]}" \
	--metrics-addr=127.0.0.1:18082 --health-addr=127.0.0.1:19442
start helm-controller env KUBECONFIG="$kcfg" RUNTIME_NAMESPACE=flux-system "$bin/helm-controller" "${common[@]}" \
	--metrics-addr=127.0.0.1:18083 --health-addr=127.0.0.1:19443
wait_for source-controller 60 curl -sf http://127.0.0.1:19441/readyz
wait_for kustomize-controller 60 curl -sf http://127.0.0.1:19442/readyz
wait_for helm-controller 60 curl -sf http://127.0.0.1:19443/readyz

cat >"$state/env" <<EOF
OBOL_E2E_KUBECONFIG=$kcfg
OBOL_E2E_REPOS=$state/repos
OBOL_E2E_GIT_URL=http://127.0.0.1:$git_port
OBOL_E2E_MINIMAL=$minimal
EOF
say "up in $((SECONDS - t0))s: KUBECONFIG=$kcfg; repos under $state/repos are served at http://127.0.0.1:$git_port/<name>.git; stop with $state/down.sh"
