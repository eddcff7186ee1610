#!/usr/bin/env bash
# scripts/e2e/up.sh [STATE]
#
# Starts the end-to-end test's Kubernetes on this machine, as host processes (no Docker), with a
# real node: etcd, kube-apiserver, kube-controller-manager and kube-scheduler; containerd + runc
# with the reference CNI plugins; the kubelet, kube-proxy (iptables) and CoreDNS (cluster DNS).
# Nothing of the stack itself runs here: `obol stack up` applies the Flux controllers and the git
# endpoint, and they run as pods on the node. Binaries come from scripts/e2e/setup.sh
# ($OBOL_E2E_PREFIX, default ~/.cache/obol-e2e); the images from images.sh and setup.sh.
#
# The network never leaves the machine. The node is the bridge obol0 at $NODE_IP (10.244.0.1):
# the API server, the kubelet and CoreDNS listen there, pods get 10.244.0.0/24 on it, and the
# Service range 10.96.0.0/16 is routed onto it. Pods have routes to those two ranges only (no
# default route), the bridge does no masquerading, FORWARD drops anything entering or leaving
# the bridge from elsewhere, CoreDNS answers cluster.local and forwards nothing, and containerd
# pulls from nowhere (every registry it knows points at a closed loopback port). The stack
# repos are $STATE/repos, bind-mounted at /obol: the hostPath the git endpoint serves, as k3d
# mounts it.
#
# It writes $STATE/kubeconfig, $STATE/env (assignments the test reads) and $STATE/down.sh, which
# stops exactly what was started here and undoes the node's network, mounts and iptables rules.
# The cluster's data is wiped at each start, so every run begins from an empty cluster; the
# images containerd holds are kept, as a node's would be across a control-plane rebuild.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
prefix=${OBOL_E2E_PREFIX:-$HOME/.cache/obol-e2e}
bin=$prefix/bin
state=${1:-${OBOL_E2E_STATE:-/tmp/obol-e2e}}

node_ip=${NODE_IP:-10.244.0.1}
pod_cidr=${POD_CIDR:-10.244.0.0/24}
svc_cidr=${SERVICE_CIDR:-10.96.0.0/16}
bridge=obol0
node=e2e-node
etcd_port=${ETCD_PORT:-23790}
apiserver_port=${APISERVER_PORT:-16443}
repo_mount=/obol

say() { printf '[e2e up %s] %s\n' "$(date +%T)" "$*" >&2; }
kubectl=$bin/kubectl
[ "$(id -u)" = 0 ] || { say "a real node needs root (containerd, the kubelet, iptables)"; exit 1; }
for f in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns crictl; do
	[ -x "$bin/$f" ] || { say "missing $bin/$f: run scripts/e2e/setup.sh"; exit 1; }
done
for f in containerd ctr runc; do
	command -v $f >/dev/null || { say "missing $f: run scripts/e2e/setup.sh (it installs Debian's containerd and runc)"; exit 1; }
done

if [ -x "$state/down.sh" ]; then "$state/down.sh" >/dev/null 2>&1 || true; fi
# What the previous run's down.sh may not have removed (it was killed): nothing may be mounted
# under $state before it is wiped.
findmnt -rn -o TARGET | awk -v s="$state/" 'index($0, s) == 1' | sort -r | xargs -r umount -l 2>/dev/null || true
rm -rf "$state/etcd" "$state/logs" "$state/kubelet" "$state/containerd/state" "$state/cni"
mkdir -p "$state"/{pki,logs,etcd,repos,kubelet,cni,containerd/root,containerd/state,containerd/net.d,containerd/certs.d}
pids=$state/pids
: >"$pids"
kcfg=$state/kubeconfig
export KUBECONFIG=$kcfg
cri=unix://$state/containerd/containerd.sock
crictl=("$bin/crictl" --runtime-endpoint "$cri" --image-endpoint "$cri" --timeout 10s)

cat >"$state/down.sh" <<EOF
#!/usr/bin/env bash
# Stops what scripts/e2e/up.sh started (PIDs in $pids) and undoes the node: pods first (the
# kubelet is stopped so it restarts none, then every sandbox is removed through the CRI, which
# runs the CNI teardown), then the processes newest first, then mounts, iptables and the bridge.
pids=$pids
stop() { # stop NAME...: TERM to all at once, wait up to 5 s for them together, then KILL
	local n p live=()
	for n in "\$@"; do
		p=\$(awk -v n="\$n" '\$2 == n {print \$1}' "\$pids" 2>/dev/null)
		[ -n "\$p" ] && kill "\$p" 2>/dev/null && live+=("\$p") && echo "stopping \$n (\$p)"
	done
	for _ in \$(seq 50); do
		n=0
		for p in "\${live[@]}"; do kill -0 "\$p" 2>/dev/null && n=1; done
		[ \$n = 0 ] && return
		sleep 0.1
	done
	for p in "\${live[@]}"; do kill -9 "\$p" 2>/dev/null || true; done
}
if [ -f "\$pids" ]; then
	stop kubelet
	if [ -S "$state/containerd/containerd.sock" ]; then
		${crictl[*]} rmp --all --force >/dev/null 2>&1 || true
	fi
	stop \$(tac "\$pids" | awk '{print \$2}')
	rm -f "\$pids"
fi
# A container left by a killed shim: every process still in the node's pod cgroups.
for f in /sys/fs/cgroup/pids/kubepods /sys/fs/cgroup/memory/kubepods; do
	[ -d "\$f" ] && find "\$f" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
done
pkill -9 -f "containerd-shim-runc-v2 -namespace k8s.io -address $state/containerd/containerd.sock" 2>/dev/null || true
"$bin/kube-proxy" --cleanup >/dev/null 2>&1 || true
findmnt -rn -o TARGET | awk -v s="$state/" 'index(\$0, s) == 1' | sort -r | xargs -r umount -l 2>/dev/null || true
for ns in \$(ls /run/netns 2>/dev/null | grep '^cni-'); do ip netns delete "\$ns" 2>/dev/null || true; done
mountpoint -q $repo_mount && umount -l $repo_mount
# The kubelet's and kube-proxy's chains (KUBE-FIREWALL drops non-loopback sources to 127/8)
# and the node's isolation chain.
for t in iptables ip6tables; do
	command -v \$t-save >/dev/null || continue
	\$t-save | grep -v -e 'KUBE-' -e 'OBOL-E2E' | \$t-restore 2>/dev/null || true
done
ip route del $svc_cidr dev $bridge 2>/dev/null || true
ip link del $bridge 2>/dev/null || true
# kube-proxy set it for node ports on 127.0.0.1.
sysctl -qw net.ipv4.conf.all.route_localnet=0 2>/dev/null || true
exit 0
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

# The node's network: a bridge with the node's address, the Service range routed onto it, and
# nothing forwarded between it and any other interface.
ip link add "$bridge" type bridge 2>/dev/null || true
ip addr replace "$node_ip/${pod_cidr#*/}" dev "$bridge"
ip link set "$bridge" up
ip route replace "$svc_cidr" dev "$bridge"
sysctl -qw net.ipv4.ip_forward=1
iptables -N OBOL-E2E-ISOLATE 2>/dev/null || iptables -F OBOL-E2E-ISOLATE
iptables -A OBOL-E2E-ISOLATE -i "$bridge" ! -o "$bridge" -j DROP
iptables -A OBOL-E2E-ISOLATE -o "$bridge" ! -i "$bridge" -j DROP
iptables -C FORWARD -j OBOL-E2E-ISOLATE 2>/dev/null || iptables -I FORWARD 1 -j OBOL-E2E-ISOLATE
mkdir -p "$repo_mount"
mountpoint -q "$repo_mount" || mount --bind "$state/repos" "$repo_mount"

# Certificates (kept across runs): a CA, the API server's serving cert (the node address, the
# kubernetes Service's ClusterIP and names), an admin client cert (O=system:masters; the
# kubelet, kube-proxy and CoreDNS use it too) and the service-account key pair.
p=$state/pki
if [ ! -f "$p/admin.crt" ] || ! openssl x509 -in "$p/apiserver.crt" -noout -text 2>/dev/null | grep -q "IP Address:$node_ip"; then
	say "generating certificates"
	rm -f "$p"/*
	(
		cd "$p"
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=obol-e2e-ca" -keyout ca.key -out ca.crt 2>/dev/null
		printf 'subjectAltName=IP:%s,IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' "$node_ip" >apiserver.ext
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
"$kubectl" config set-cluster obol-e2e --server="https://$node_ip:$apiserver_port" --certificate-authority="$p/ca.crt" --embed-certs=true >/dev/null
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

# On the node's address, so pods reach it through the kubernetes Service, whose endpoint the
# API server keeps itself (the default reconciler refuses only loopback addresses).
start kube-apiserver "$bin/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" \
	--bind-address="$node_ip" --advertise-address="$node_ip" --secure-port="$apiserver_port" \
	--tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" --client-ca-file="$p/ca.crt" \
	--kubelet-client-certificate="$p/admin.crt" --kubelet-client-key="$p/admin.key" \
	--kubelet-preferred-address-types=InternalIP \
	--service-account-issuer=https://kubernetes.default.svc.cluster.local \
	--service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
	--service-cluster-ip-range="$svc_cidr" \
	--authorization-mode=Node,RBAC --allow-privileged=true --profiling=false
wait_for kube-apiserver 120 "$kubectl" get --raw /readyz

start kube-controller-manager "$bin/kube-controller-manager" \
	--kubeconfig="$kcfg" --authentication-kubeconfig="$kcfg" --authorization-kubeconfig="$kcfg" \
	--bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false --use-service-account-credentials=false \
	--service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" \
	--cluster-signing-cert-file="$p/ca.crt" --cluster-signing-key-file="$p/ca.key"
start kube-scheduler "$bin/kube-scheduler" --kubeconfig="$kcfg" \
	--authentication-kubeconfig="$kcfg" --authorization-kubeconfig="$kcfg" \
	--bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false

# containerd: the CRI with runc, CNI from Debian's plugins, the pause image built here, and
# every registry pointed at a closed loopback port, so a missing image fails at once
# (ErrImagePull) instead of reaching out.
for r in ghcr.io docker.io registry.k8s.io quay.io obol.test; do
	mkdir -p "$state/containerd/certs.d/$r"
	printf 'server = "http://127.0.0.1:9"\n\n[host."http://127.0.0.1:9"]\n  capabilities = ["pull", "resolve"]\n' >"$state/containerd/certs.d/$r/hosts.toml"
done
cat >"$state/containerd/config.toml" <<EOF
version = 2
root = "$state/containerd/root"
state = "$state/containerd/state"
[grpc]
  address = "$state/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "obol.test/pause:1"
  # This VM lacks CAP_SYS_RESOURCE: the sandbox cannot lower its oom_score_adj.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/containerd/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$state/containerd/certs.d"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  BinaryName = "$(command -v runc)"
EOF
# No default route in the pods: they reach the pod subnet (on link) and Services (through the
# node, where kube-proxy rewrites them), nothing else.
cat >"$state/containerd/net.d/10-obol.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "obol-e2e",
  "plugins": [
    {
      "type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$state/cni",
        "ranges": [[{"subnet": "$pod_cidr", "rangeStart": "${node_ip%.*}.10", "gateway": "$node_ip"}]],
        "routes": [{"dst": "$svc_cidr", "gw": "$node_ip"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
EOF
start containerd containerd --config "$state/containerd/config.toml"
wait_for containerd 30 "${crictl[@]}" info
"${crictl[@]}" rmp --all --force >/dev/null 2>&1 || true

# Every image the node runs, imported under the reference the manifests use (IfNotPresent
# never pulls): the pause image, the gateway and obol-git (images.sh, from this checkout), the
# Flux controllers (setup.sh). containerd's content store outlives a wipe, so an image already
# there costs little.
images=$state/images
for tar in "$images/pause.tar" "$images/obol-gateway.tar" "$images/obol-git.tar" "$prefix"/images/*.tar; do
	[ -f "$tar" ] || { say "missing $tar: run scripts/e2e/images.sh (and setup.sh)"; exit 1; }
	ctr --address "$state/containerd/containerd.sock" -n k8s.io images import "$tar" >/dev/null
done
say "images: $(ctr --address "$state/containerd/containerd.sock" -n k8s.io images ls -q | grep -v '^sha256:' | tr '\n' ' ')"

# The kubelet: cgroup v1 with cgroupfs (no systemd here), serving on the node's address with
# the cluster CA for the API server's client cert, cluster DNS at CoreDNS on the node.
printf 'nameserver %s\nsearch cluster.local\n' "$node_ip" >"$state/resolv.conf"
cat >"$state/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: $cri
failSwapOn: false
address: $node_ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $p/ca.crt}
authorization: {mode: AlwaysAllow}
clusterDNS: [$node_ip]
clusterDomain: cluster.local
resolvConf: $state/resolv.conf
maxPods: 250
serializeImagePulls: false
staticPodPath: $state/kubelet/manifests
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
enforceNodeAllocatable: []
EOF
mkdir -p "$state/kubelet/manifests"
start kubelet "$bin/kubelet" --config "$state/kubelet.yaml" --kubeconfig "$kcfg" --hostname-override "$node" \
	--root-dir "$state/kubelet" --node-ip "$node_ip"
wait_for "default ServiceAccount" 60 "$kubectl" -n default get serviceaccount default
wait_for "node $node Ready" 90 "$kubectl" wait --for=condition=Ready "node/$node" --timeout=2s
# The control-plane role, as on a k3d server node: where the git endpoint (its hostPath) runs.
"$kubectl" label --overwrite node "$node" node-role.kubernetes.io/control-plane=true >/dev/null

# Node ports on the node's address and on 127.0.0.1: the edge's node port is where a buyer on
# this host reaches the offers, as the k3d host port is on a laptop.
cat >"$state/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: 10.244.0.0/16
hostnameOverride: $node
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clientConnection: {kubeconfig: $kcfg}
conntrack: {maxPerCore: 0}
iptables: {localhostNodePorts: true}
nodePortAddresses: ["127.0.0.1/32", "$node_ip/32"]
EOF
start kube-proxy "$bin/kube-proxy" --config "$state/kube-proxy.yaml"
wait_for kube-proxy 60 curl -sf http://127.0.0.1:10256/healthz

# Cluster DNS: cluster.local and the reverse zones from the API server; no forward plugin, so
# any other name fails here and nothing leaves the machine.
cat >"$state/Corefile" <<EOF
.:53 {
    bind $node_ip
    errors
    health 127.0.0.1:18053
    ready 127.0.0.1:18181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $kcfg obol-e2e
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
EOF
start coredns "$bin/coredns" -conf "$state/Corefile"
wait_for coredns 60 curl -sf http://127.0.0.1:18181/ready

cat >"$state/env" <<EOF
OBOL_E2E_KUBECONFIG=$kcfg
OBOL_E2E_REPOS=$state/repos
OBOL_E2E_NODE=$node
OBOL_E2E_NODE_IP=$node_ip
OBOL_E2E_CRI=$cri
OBOL_E2E_CRICTL=$bin/crictl
EOF
say "up in $((SECONDS - t0))s: KUBECONFIG=$kcfg; node $node at $node_ip; repos under $state/repos (mounted at $repo_mount); stop with $state/down.sh"
