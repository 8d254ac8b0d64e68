// Package testnode starts a one-node Kubernetes cluster on this machine for
// end-to-end tests: etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler (hack/control-plane.sh, hack/node.sh), containerd with
// Debian's runc and CNI bridge plugin, and a kubelet, all with their files
// under BaseDir. Images are imported from docker-archive tarballs (make
// image); nothing is ever pulled.
//
// The node needs root and changes the host, so it keeps a record and undoes
// every change: at the end of the test (t.Cleanup), on SIGINT/SIGTERM, and at
// the start of the next run if a run was killed (a leftover sweep). Pods live
// in the kubelet's cgroups, outside the test's own process tree, so teardown
// kills them there. Network traffic stays on this machine: pods reach the
// host only at HostIP on the Bridge, the API server's Service address is one
// DNAT rule to it, forwarding off the bridge is dropped, and pods get no DNS
// server.
package testnode

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/keyferry/keyferry/internal/devcluster"
)

// NodeName is the name the kubelet registers.
const NodeName = "keyferry-node"

// Environment variables the Makefile sets.
const (
	// EnvNodeBin: kubelet, kube-scheduler, containerd, containerd-shim-runc-v2, ctr.
	EnvNodeBin = "KEYFERRY_NODE_BIN"
	// EnvImage and EnvPauseImage: the operator's and the pause image's tarballs.
	EnvImage      = "KEYFERRY_IMAGE"
	EnvPauseImage = "KEYFERRY_PAUSE_IMAGE"
)

// Options configure a node.
type Options struct {
	// ControlPlaneDir holds etcd, kube-apiserver and kube-controller-manager;
	// empty means devcluster.BinaryDir().
	ControlPlaneDir string
	// NodeDir holds kubelet, kube-scheduler, containerd,
	// containerd-shim-runc-v2 and ctr; empty means $KEYFERRY_NODE_BIN or
	// bin/node/<version>.
	NodeDir string
	// PauseImage is the pod sandbox image's tarball (its tag becomes
	// containerd's sandbox image); Images are more tarballs to import.
	PauseImage string
	Images     []string
}

// Node is a running one-node cluster.
type Node struct {
	// Config is an admin client configuration; Kubeconfig its file.
	Config     *rest.Config
	Kubeconfig string
	// Clientset is an admin clientset.
	Clientset *kubernetes.Clientset

	opts    Options
	pki     *pki
	t       testing.TB
	mu      sync.Mutex
	closers []io.Closer
}

// Start starts the node, or fails the test. Everything is torn down when the
// test ends.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("testnode: a node needs root (mounts, cgroups, network namespaces)")
	}
	if err := opts.defaults(); err != nil {
		t.Fatalf("testnode: %v", err)
	}
	lock, err := lockAndSweep(t.Logf)
	if err != nil {
		t.Fatalf("testnode: %v", err)
	}
	n := &Node{opts: opts, t: t}
	var once sync.Once
	stop := func(logf func(string, ...any)) error {
		var err error
		once.Do(func() {
			n.mu.Lock()
			for _, c := range n.closers {
				_ = c.Close()
			}
			n.mu.Unlock()
			err = teardown(BaseDir, logf)
			_ = lock.Close()
		})
		return err
	}
	// Interrupted (Ctrl-C, a CI timeout's SIGTERM): tear down, then exit.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			// The test's log is lost on exit: report on stderr.
			logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
			logf("testnode: %v: tearing the node down", sig)
			if err := stop(logf); err != nil {
				logf("testnode: teardown: %v", err)
			}
			os.Exit(1)
		case <-done:
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			n.dumpLogs()
		}
		signal.Stop(sigs)
		close(done)
		if err := stop(t.Logf); err != nil {
			t.Errorf("testnode: teardown: %v", err)
		}
	})
	if err := n.start(); err != nil {
		t.Fatalf("testnode: %v", err)
	}
	return n
}

// Sweep undoes what a node that was killed (SIGKILL, a test timeout) left
// behind: its pods, processes, mounts, cgroups, bridge, iptables chains and
// sysctl changes. Start does it first; it fails when a node is running.
func Sweep(logf func(string, ...any)) error {
	lock, err := lockAndSweep(logf)
	if err != nil {
		return err
	}
	return lock.Close()
}

// lockAndSweep takes the machine-wide node lock and sweeps leftovers.
func lockAndSweep(logf func(string, ...any)) (*os.File, error) {
	lock, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("another node is running on this machine (%s is locked): %w", lockFile, err)
	}
	if _, err := os.Stat(BaseDir); err == nil {
		logf("testnode: sweeping the leftovers of an earlier run in %s", BaseDir)
		if err := teardown(BaseDir, logf); err != nil {
			_ = lock.Close()
			return nil, fmt.Errorf("the leftovers of an earlier run could not be cleaned up: %w", err)
		}
	}
	return lock, nil
}

func (o *Options) defaults() error {
	root, err := devcluster.RepoRoot()
	if err != nil {
		return err
	}
	if o.ControlPlaneDir == "" {
		if o.ControlPlaneDir, err = devcluster.BinaryDir(); err != nil {
			return err
		}
	}
	if o.NodeDir == "" {
		o.NodeDir = os.Getenv(EnvNodeBin)
	}
	if o.NodeDir == "" {
		o.NodeDir = filepath.Join(root, "bin", "node", devcluster.DefaultVersion)
	}
	if o.PauseImage == "" {
		o.PauseImage = os.Getenv(EnvPauseImage)
	}
	if o.PauseImage == "" {
		o.PauseImage = filepath.Join(root, "bin", "image", "pause.tar")
	}
	for _, f := range []string{
		filepath.Join(o.ControlPlaneDir, "etcd"), filepath.Join(o.ControlPlaneDir, "kube-apiserver"),
		filepath.Join(o.ControlPlaneDir, "kube-controller-manager"),
		filepath.Join(o.NodeDir, "kubelet"), filepath.Join(o.NodeDir, "kube-scheduler"),
		filepath.Join(o.NodeDir, "containerd"), filepath.Join(o.NodeDir, "containerd-shim-runc-v2"),
		filepath.Join(o.NodeDir, "ctr"), o.PauseImage,
		"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback",
	} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s is missing (run `make node image control-plane`): %w", f, err)
		}
	}
	for _, c := range []string{"runc", "iptables", "ip"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%s is missing (run `make node`): %w", c, err)
		}
	}
	return nil
}

// ImageRef returns the tag recorded in a docker-archive tarball.
func ImageRef(tarPath string) (string, error) {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(tarPath) })
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", tarPath, err)
	}
	if len(m) != 1 || len(m[0].RepoTags) != 1 {
		return "", fmt.Errorf("%s: want one image with one tag", tarPath)
	}
	return m[0].RepoTags[0], nil
}

func (n *Node) path(elem ...string) string {
	return filepath.Join(append([]string{BaseDir}, elem...)...)
}

func (n *Node) start() error {
	if err := os.MkdirAll(n.path("logs"), 0o700); err != nil {
		return err
	}
	// Record the host before changing anything.
	state, err := recordHost()
	if err != nil {
		return err
	}
	if err := state.save(n.path("host.json")); err != nil {
		return err
	}
	if err := n.startNetwork(); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if n.pki, err = newPKI(n.path("pki")); err != nil {
		return err
	}
	if err := n.pki.issue("apiserver", "kube-apiserver", nil, "127.0.0.1", HostIP, ServiceIP, "localhost",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"); err != nil {
		return err
	}
	if err := n.pki.issue("admin", "keyferry-admin", []string{"system:masters"}); err != nil {
		return err
	}
	if err := n.pki.issue("kubelet", "system:node:"+NodeName, []string{"system:nodes"}); err != nil {
		return err
	}
	if err := n.pki.serviceAccountKeys(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := n.startControlPlane(ctx); err != nil {
		return err
	}
	if err := n.startContainerd(ctx); err != nil {
		return err
	}
	return n.startKubelet(ctx)
}

// startNetwork makes the bridge with HostIP (so that the API server can
// listen there before the first pod), the DNAT rule for the API server's
// Service address, and the rules that keep pod traffic on the bridge.
func (n *Node) startNetwork() error {
	cmds := [][]string{
		{"ip", "link", "add", Bridge, "type", "bridge"},
		{"ip", "addr", "add", HostIP + "/24", "dev", Bridge},
		{"ip", "link", "set", Bridge, "up"},
		{"iptables", "-w", "-t", "filter", "-N", fwdChain},
		{"iptables", "-w", "-t", "filter", "-A", fwdChain, "-i", Bridge, "!", "-o", Bridge, "-j", "DROP"},
		{"iptables", "-w", "-t", "filter", "-A", fwdChain, "-o", Bridge, "!", "-i", Bridge, "-j", "DROP"},
		{"iptables", "-w", "-t", "filter", "-I", "FORWARD", "-j", fwdChain},
		{"iptables", "-w", "-t", "nat", "-N", natChain},
		{"iptables", "-w", "-t", "nat", "-I", "PREROUTING", "-i", Bridge, "-j", natChain},
	}
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	return nil
}

func (n *Node) startControlPlane(ctx context.Context) error {
	cp := n.opts.ControlPlaneDir
	ports, err := freePorts(5)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort, kcmPort, schedPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	if err := n.run("etcd", filepath.Join(cp, "etcd"), nil,
		"--name=default", "--data-dir="+n.path("etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL, "--unsafe-no-fsync=true", "--log-level=warn"); err != nil {
		return err
	}
	if err := pollHTTP(ctx, http.DefaultClient, etcdURL+"/health"); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	p := n.pki
	if err := n.run("kube-apiserver", filepath.Join(cp, "kube-apiserver"), nil,
		"--etcd-servers="+etcdURL,
		"--bind-address="+HostIP, "--advertise-address="+HostIP, "--secure-port="+strconv.Itoa(apiPort),
		"--tls-cert-file="+p.path("apiserver.crt"), "--tls-private-key-file="+p.path("apiserver.key"),
		"--client-ca-file="+p.path("ca.crt"),
		"--service-cluster-ip-range="+ServiceCIDR,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.path("sa.pub"),
		"--service-account-signing-key-file="+p.path("sa.key"),
		"--authorization-mode=Node,RBAC",
		"--kubelet-client-certificate="+p.path("admin.crt"), "--kubelet-client-key="+p.path("admin.key"),
		"--allow-privileged=true",
		"--cert-dir="+n.path("apiserver"),
		"--v=1"); err != nil {
		return err
	}
	host := "https://" + net.JoinHostPort(HostIP, strconv.Itoa(apiPort))
	n.Config = &rest.Config{
		Host: host,
		TLSClientConfig: rest.TLSClientConfig{
			CAFile: p.path("ca.crt"), CertFile: p.path("admin.crt"), KeyFile: p.path("admin.key"),
		},
		QPS: 50, Burst: 100,
	}
	if n.Clientset, err = kubernetes.NewForConfig(n.Config); err != nil {
		return err
	}
	if err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		b, err := n.Clientset.RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(b) == "ok", nil
	}); err != nil {
		return fmt.Errorf("kube-apiserver not ready: %w", err)
	}
	if err := n.exposeAPIServer(); err != nil {
		return err
	}
	n.Kubeconfig = n.path("admin.kubeconfig")
	if err := n.writeKubeconfig(n.Kubeconfig, host, "admin"); err != nil {
		return err
	}
	if err := n.writeKubeconfig(n.path("kubelet.kubeconfig"), host, "kubelet"); err != nil {
		return err
	}
	if err := n.run("kube-controller-manager", filepath.Join(cp, "kube-controller-manager"), nil,
		"--kubeconfig="+n.Kubeconfig, "--authentication-kubeconfig="+n.Kubeconfig, "--authorization-kubeconfig="+n.Kubeconfig,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(kcmPort),
		"--cert-dir="+n.path("kcm"),
		"--service-account-private-key-file="+p.path("sa.key"), "--root-ca-file="+p.path("ca.crt"),
		"--cluster-signing-cert-file="+p.path("ca.crt"), "--cluster-signing-key-file="+p.path("ca.key"),
		"--use-service-account-credentials=false", "--v=1"); err != nil {
		return err
	}
	return n.run("kube-scheduler", filepath.Join(n.opts.NodeDir, "kube-scheduler"), nil,
		"--kubeconfig="+n.Kubeconfig, "--authentication-kubeconfig="+n.Kubeconfig, "--authorization-kubeconfig="+n.Kubeconfig,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(schedPort), "--v=1")
}

func (n *Node) writeKubeconfig(path, host, user string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["node"] = &clientcmdapi.Cluster{Server: host, CertificateAuthority: n.pki.path("ca.crt")}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificate: n.pki.path(user + ".crt"), ClientKey: n.pki.path(user + ".key")}
	cfg.Contexts["node"] = &clientcmdapi.Context{Cluster: "node", AuthInfo: user}
	cfg.CurrentContext = "node"
	return clientcmd.WriteToFile(*cfg, path)
}

// containerdConfig: CRI with restrict_oom_score_adj (root lacks
// CAP_SYS_RESOURCE here), the imported pause image as sandbox image, netns
// mounts under our state dir, and our CNI conf dir.
const containerdConfig = `version = 3
root = "{{base}}/containerd/root"
state = "{{base}}/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{{base}}/containerd/containerd.sock"

[ttrpc]
  address = "{{base}}/containerd/containerd.sock.ttrpc"

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{{runc}}"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{{base}}/cni/net.d"
    max_conf_num = 1

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{{pause}}"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`

// cniConfig: a bridge network without masquerading (pods talk to the host
// only), addresses from host-local with its state under BaseDir.
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "{{network}}",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "{{bridge}}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "{{base}}/cni/ipam",
        "ranges": [[{"subnet": "{{podCIDR}}", "gateway": "{{hostIP}}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "loopback"}
  ]
}
`

func (n *Node) fill(s string, extra ...string) string {
	return strings.NewReplacer(append([]string{
		"{{base}}", BaseDir, "{{bridge}}", Bridge, "{{network}}", cniNetwork,
		"{{podCIDR}}", PodCIDR, "{{hostIP}}", HostIP,
	}, extra...)...).Replace(s)
}

func (n *Node) startContainerd(ctx context.Context) error {
	pauseRef, err := ImageRef(n.opts.PauseImage)
	if err != nil {
		return err
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		return err
	}
	for _, d := range []string{"containerd", "cni/net.d", "cni/ipam"} {
		if err := os.MkdirAll(n.path(d), 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(n.path("containerd", "config.toml"), []byte(n.fill(containerdConfig, "{{runc}}", runc, "{{pause}}", pauseRef)), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(n.path("cni", "net.d", "10-keyferry.conflist"), []byte(n.fill(cniConfig)), 0o600); err != nil {
		return err
	}
	env := []string{"PATH=" + n.opts.NodeDir + ":" + os.Getenv("PATH")}
	if err := n.run("containerd", filepath.Join(n.opts.NodeDir, "containerd"), env,
		"--config="+n.path("containerd", "config.toml"), "--log-level=warn"); err != nil {
		return err
	}
	sock := n.path("containerd", "containerd.sock")
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		return exec.CommandContext(ctx, filepath.Join(n.opts.NodeDir, "ctr"), "--address", sock, "version").Run() == nil, nil
	}); err != nil {
		return fmt.Errorf("containerd not serving on %s: %w", sock, err)
	}
	for _, img := range append([]string{n.opts.PauseImage}, n.opts.Images...) {
		if err := n.importImage(ctx, img); err != nil {
			return err
		}
	}
	return nil
}

// importImage imports a docker-archive tarball into the k8s.io namespace,
// where the CRI looks for images.
func (n *Node) importImage(ctx context.Context, tarPath string) error {
	out, err := exec.CommandContext(ctx, filepath.Join(n.opts.NodeDir, "ctr"), "--address", n.path("containerd", "containerd.sock"),
		"-n", "k8s.io", "images", "import", "--local", tarPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("importing %s: %v: %s", tarPath, err, out)
	}
	return nil
}

// attemptTimeout bounds each request of the start-up polls. Without it,
// one request on a connection that hung while the API server started (a
// peer that never answered) held a poll for minutes: nodes were Ready
// 4.5–5 minutes after start instead of about 10 seconds.
const attemptTimeout = 5 * time.Second

// kubeletConfig: cgroupfs on the host's cgroup v1, static config, the
// kubelet's files under BaseDir, no DNS server for pods, no eviction or image
// GC getting in a short test's way.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {{hostIP}}
port: {{port}}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {{healthz}}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: {{base}}/pki/ca.crt}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://{{base}}/containerd/containerd.sock
podLogsDir: {{base}}/pod-logs
resolvConf: {{base}}/resolv.conf
clusterDomain: cluster.local
maxPods: 16
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
protectKernelDefaults: false
`

func (n *Node) startKubelet(ctx context.Context) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.path("resolv.conf"), nil, 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(n.path("pod-logs"), 0o700); err != nil {
		return err
	}
	cfg := n.fill(kubeletConfig, "{{port}}", strconv.Itoa(ports[0]), "{{healthz}}", strconv.Itoa(ports[1]))
	if err := os.WriteFile(n.path("kubelet.yaml"), []byte(cfg), 0o600); err != nil {
		return err
	}
	env := []string{"PATH=" + n.opts.NodeDir + ":" + os.Getenv("PATH")}
	if err := n.run("kubelet", filepath.Join(n.opts.NodeDir, "kubelet"), env,
		"--config="+n.path("kubelet.yaml"),
		"--kubeconfig="+n.path("kubelet.kubeconfig"),
		"--root-dir="+n.path("kubelet"),
		"--cert-dir="+n.path("kubelet", "pki"),
		"--hostname-override="+NodeName,
		"--node-ip="+HostIP,
		"--v=1"); err != nil {
		return err
	}
	if err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		node, err := n.Clientset.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return fmt.Errorf("node %s never became Ready: %w", NodeName, err)
	}
	// Pods need their namespace's ServiceAccount (kube-controller-manager).
	return wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		_, err := n.Clientset.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// run starts a component with its output in BaseDir/logs/<name>.log and
// records its PID for teardown.
func (n *Node) run(name, bin string, env []string, args ...string) error {
	logFile, err := os.Create(n.path("logs", name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	// If the test process dies, the component dies with it (its pods are
	// swept by the next run).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	exe, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if err := recordPID(BaseDir, name, cmd.Process.Pid, exe); err != nil {
		return err
	}
	go func() { _ = cmd.Wait(); _ = logFile.Close() }()
	return nil
}

// Logs returns the last lines of a component's log (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd, kubelet).
func (n *Node) Logs(name string, lines int) string {
	b, err := os.ReadFile(n.path("logs", name+".log"))
	if err != nil {
		return err.Error()
	}
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// PodLogs returns the logs of every container of the pods in namespace ns
// whose name starts with prefix, read from the kubelet's log directory.
func (n *Node) PodLogs(ns, prefix string) string {
	var b strings.Builder
	dirs, _ := filepath.Glob(n.path("pod-logs", ns+"_"+prefix+"*"))
	for _, d := range dirs {
		_ = filepath.Walk(d, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				data, _ := os.ReadFile(p)
				fmt.Fprintf(&b, "== %s\n%s\n", strings.TrimPrefix(p, n.path("pod-logs")), data)
			}
			return nil
		})
	}
	return b.String()
}

func (n *Node) dumpLogs() {
	for _, c := range []string{"kubelet", "containerd", "kube-apiserver", "kube-scheduler", "kube-controller-manager"} {
		n.t.Logf("---- %s (last lines)\n%s", c, n.Logs(c, 40))
	}
}

// Expose makes a host address that listens on loopback (a test server)
// reachable from pods: it returns HostIP:port, where a proxy forwards each
// connection to addr. The proxy closes when the node stops.
func (n *Node) Expose(addr string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(HostIP, "0"))
	if err != nil {
		return "", fmt.Errorf("listening on %s: %w", HostIP, err)
	}
	n.mu.Lock()
	n.closers = append(n.closers, l)
	n.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); _ = up.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	return l.Addr().String(), nil
}

// exposeAPIServer adds the DNAT rule that sends pods' connections to the
// kubernetes Service (ServiceIP:443) to the API server on HostIP.
func (n *Node) exposeAPIServer() error {
	_, port, err := net.SplitHostPort(strings.TrimPrefix(n.Config.Host, "https://"))
	if err != nil {
		return err
	}
	args := []string{"-w", "-t", "nat", "-A", natChain, "-d", ServiceIP + "/32", "-p", "tcp", "--dport", "443",
		"-j", "DNAT", "--to-destination", net.JoinHostPort(HostIP, port)}
	if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("iptables %v: %v: %s", args, err, out)
	}
	return nil
}

func pollHTTP(ctx context.Context, c *http.Client, url string) error {
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

func freePorts(k int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range k {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// PauseImage returns the pause image's tarball (its tag is the sandbox
// image, which pods can also run: it blocks until SIGTERM).
func (n *Node) PauseImage() string { return n.opts.PauseImage }
