// Package node runs keyferry's Helm chart with the project's own image on a
// real one-node cluster (kubelet + containerd, internal/testing/testnode) and checks
// what a platform team relies on: the Pod becomes Ready, ExternalSecrets sync
// (the fake-provider quickstart and a Vault dev server reached from the pod
// network), a rollout restart rewrites nothing, `helm upgrade` takes effect,
// and `helm uninstall` keeps the CRDs, ExternalSecrets and Secrets.
// TestMigrateFromESOOnARealNode (migrate_test.go) follows
// docs/migrate-from-eso.md from a cluster as ESO v2.9.0 leaves it.
//
// It needs root and changes the host (then restores it), so it runs only when
// KEYFERRY_NODE=1: `make test-node` builds everything and sets it.
package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/manifest"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testnode"
	"github.com/keyferry/keyferry/internal/testing/testserver/vaultserver"
)

const (
	release   = "keyferry"
	namespace = "keyferry-system"
	// timeout bounds each wait; it only decides how long a failing test
	// takes to fail (two shared cores, a cold containerd).
	timeout = 3 * time.Minute
)

var esGVK = schema.GroupVersionKind{Group: "external-secrets.io", Version: "v1", Kind: "ExternalSecret"}

// The CRDs the chart installs by default, which uninstall must keep.
var chartCRDs = []string{
	"externalsecrets.external-secrets.io", "secretstores.external-secrets.io",
	"clustersecretstores.external-secrets.io", "clusterexternalsecrets.external-secrets.io",
	"secretproviderclasses.secrets-store.csi.x-k8s.io", "secretsyncs.secret-sync.x-k8s.io",
}

type suite struct {
	t        *testing.T
	root     string
	node     *testnode.Node
	c        client.Client
	helm     string
	helmEnv  []string
	imageRef string
}

func TestChartOnARealNode(t *testing.T) {
	if os.Getenv("KEYFERRY_NODE") != "1" {
		t.Skip("the real-node test needs root and changes the host; run `make test-node` (sets KEYFERRY_NODE=1)")
	}
	start := time.Now()
	s := newSuite(t)
	t.Logf("node Ready after %s", time.Since(start).Round(time.Second))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- operator pod logs\n%s", s.node.PodLogs(namespace, release))
		}
	})
	root := s.root

	repo, tag := splitRef(s.imageRef)
	// ESO's Vault example talks plain HTTP, which keyferry refuses unless
	// the platform team allows it (extraArgs: --allow-insecure-http=true).
	imageValues := []string{"image.repository=" + repo, "image.tag=" + tag, "image.pullPolicy=Never", "extraArgs.allow-insecure-http=true"}

	// helm install → the Pod becomes Ready.
	s.helmRun("install", release, filepath.Join(root, "deploy", "chart", "keyferry"),
		"--namespace", namespace, "--create-namespace", "--set", strings.Join(imageValues, ","))
	first := s.waitOperatorReady("")
	t.Logf("operator Pod %s Ready after %s", first.Name, time.Since(start).Round(time.Second))

	// The quickstart (fake provider) and a Vault-backed ExternalSecret sync.
	s.namespace("quickstart")
	s.apply("quickstart", filepath.Join(root, "examples", "quickstart", "quickstart.yaml"), nil)
	s.waitSecret("quickstart", "database-credentials", map[string]string{
		"username": "app", "password": "quickstart-not-a-real-password",
		"url": "postgres://app:quickstart-not-a-real-password@db.demo.svc:5432/app",
	})
	vault := vaultserver.StartWithOptions(t, vaultserver.Options{RootToken: "root"})
	vaultURL, err := url.Parse(vault.Addr)
	if err != nil {
		t.Fatal(err)
	}
	vaultFromPods, err := s.node.Expose(vaultURL.Host)
	if err != nil {
		t.Fatal(err)
	}
	vault.PutKV(t, "secret", 2, "foo", map[string]any{"my-value": "from-vault-on-a-real-node"})
	// The example also reads the secret's custom metadata (metadataPolicy:
	// Fetch, property dev).
	vault.Write(t, "secret/metadata/foo", map[string]any{"custom_metadata": map[string]any{"dev": "seb"}})
	s.namespace("vault")
	// ESO's example as it is, but for the server's address: pods reach the
	// test's Vault at the host's bridge address.
	s.apply("vault", filepath.Join(root, "examples", "vault"), strings.NewReplacer("http://my.vault.server:8200", "http://"+vaultFromPods))
	s.waitSecret("vault", "example-sync", map[string]string{"foobar": "from-vault-on-a-real-node", "developer": "seb"})
	t.Logf("both ExternalSecrets synced after %s", time.Since(start).Round(time.Second))

	// Memory at rest, from the container's cgroup.
	s.reportMemory(first)

	// kubectl rollout restart: the new Pod syncs both ExternalSecrets and
	// writes no Secret, since no data changed.
	before := s.secretVersions()
	s.kubectl("-n", namespace, "rollout", "restart", "deployment/"+release)
	second := s.waitOperatorReady(first.Name)
	token := s.metricsToken()
	s.waitMetric(second, token, true, `keyferry_syncs_total{kind="ExternalSecret",reason="",result="success"}`, 2)
	if w := s.metricSum(second, token, true, "keyferry_secret_writes_total"); w != 0 {
		t.Errorf("the restarted operator wrote %v Secrets although no data changed", w)
	}
	if after := s.secretVersions(); after != before {
		t.Errorf("Secret resourceVersions changed across the restart: %s → %s", before, after)
	}

	// helm upgrade with other values: new flags and labels reach the Pod,
	// and /metrics is now plain HTTP.
	s.helmRun("upgrade", release, filepath.Join(root, "deploy", "chart", "keyferry"), "--namespace", namespace,
		"--set", strings.Join(append(imageValues, "concurrent=4", "log.level=debug", "metrics.listen.secure.enabled=false", "podLabels.keyferry-test=upgraded"), ","))
	third := s.waitOperatorReady(second.Name)
	if third.Labels["keyferry-test"] != "upgraded" {
		t.Errorf("upgraded Pod labels %v lack keyferry-test=upgraded", third.Labels)
	}
	args := strings.Join(third.Spec.Containers[0].Args, " ")
	for _, want := range []string{"--concurrent=4", "--log-level=debug", "--metrics-secure=false"} {
		if !strings.Contains(args, want) {
			t.Errorf("upgraded Pod args %q lack %s", args, want)
		}
	}
	s.waitMetric(third, "", false, `keyferry_syncs_total{kind="ExternalSecret",reason="",result="success"}`, 2)
	if w := s.metricSum(third, "", false, "keyferry_secret_writes_total"); w != 0 {
		t.Errorf("the upgraded operator wrote %v Secrets although no data changed", w)
	}
	// ESO's metric names are served beside keyferry's, for ESO's dashboards.
	if n := s.metricSum(third, "", false, "externalsecret_sync_calls_total"); n < 2 {
		t.Errorf("externalsecret_sync_calls_total = %v on the upgraded operator, want >= 2", n)
	}
	if after := s.secretVersions(); after != before {
		t.Errorf("Secret resourceVersions changed across the upgrade: %s → %s", before, after)
	}

	// helm uninstall keeps the CRDs, the ExternalSecrets and their Secrets.
	s.helmRun("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "2m")
	s.poll("the operator's Pods to go", func(ctx context.Context) (bool, string) {
		var pods corev1.PodList
		if err := s.c.List(ctx, &pods, client.InNamespace(namespace)); err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprintf("%d pods left", len(pods.Items))
	})
	ctx := context.Background()
	for _, name := range chartCRDs {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := s.c.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
			t.Errorf("CRD %s after helm uninstall: %v", name, err)
		} else if crd.DeletionTimestamp != nil {
			t.Errorf("CRD %s is being deleted after helm uninstall", name)
		}
	}
	for _, es := range [][2]string{{"quickstart", "database"}, {"vault", "vault-example"}} {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(esGVK)
		if err := s.c.Get(ctx, client.ObjectKey{Namespace: es[0], Name: es[1]}, u); err != nil || u.GetDeletionTimestamp() != nil {
			t.Errorf("ExternalSecret %s/%s after helm uninstall: %v (deleting: %v)", es[0], es[1], err, u.GetDeletionTimestamp())
		}
	}
	if after := s.secretVersions(); after != before {
		t.Errorf("Secrets changed or went after helm uninstall: %s → %s", before, after)
	}
	t.Logf("end-to-end on the node took %s", time.Since(start).Round(time.Second))
}

// newSuite builds helm and starts the node with the project's image; the
// node stops when t ends.
func newSuite(t *testing.T) *suite {
	t.Helper()
	ctrllog.SetLogger(logr.Discard()) // the test's clients have nothing to log
	root, err := devcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	image := os.Getenv(testnode.EnvImage)
	if image == "" {
		image = filepath.Join(root, "bin", "image", "keyferry.tar")
	}
	s := &suite{t: t, root: root}
	if s.imageRef, err = testnode.ImageRef(image); err != nil {
		t.Fatalf("%v (run `make image`)", err)
	}
	s.buildHelm()
	s.node = testnode.Start(t, testnode.Options{Images: []string{image}})
	scheme := operator.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if s.c, err = client.New(s.node.Config, client.Options{Scheme: scheme}); err != nil {
		t.Fatal(err)
	}
	return s
}

// with returns a copy of s that reports to t (a subtest).
func (s *suite) with(t *testing.T) *suite {
	c := *s
	c.t = t
	return &c
}

func splitRef(ref string) (repo, tag string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "latest"
	}
	return ref[:i], ref[i+1:]
}

// buildHelm builds the helm pinned in go.mod (a `tool`) once for the test,
// with its configuration and cache in a temp dir.
func (s *suite) buildHelm() {
	dir := s.t.TempDir()
	s.helm = filepath.Join(dir, "helm")
	cmd := exec.Command("go", "build", "-o", s.helm, "helm.sh/helm/v4/cmd/helm")
	cmd.Dir = s.root
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("building helm: %v\n%s", err, out)
	}
	s.helmEnv = []string{
		"HELM_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"HELM_CACHE_HOME=" + filepath.Join(dir, "cache"),
		"HELM_DATA_HOME=" + filepath.Join(dir, "data"),
	}
}

func (s *suite) helmRun(args ...string) {
	s.t.Helper()
	cmd := exec.Command(s.helm, args...)
	cmd.Env = append(os.Environ(), append(s.helmEnv, "KUBECONFIG="+s.node.Kubeconfig)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (s *suite) kubectl(args ...string) {
	s.t.Helper()
	out, err := exec.Command("kubectl", append([]string{"--kubeconfig", s.node.Kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (s *suite) poll(what string, cond func(ctx context.Context) (bool, string)) {
	s.t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, msg := cond(ctx)
		last = msg
		return ok, nil
	})
	if err != nil {
		s.t.Fatalf("timed out waiting for %s: %s", what, last)
	}
}

func (s *suite) namespace(name string) {
	s.t.Helper()
	if err := s.c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		s.t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// apply applies a manifest file or directory into ns, after replacing
// strings when r is not nil.
func (s *suite) apply(ns, path string, r *strings.Replacer) {
	s.t.Helper()
	objs, err := manifest.Read(path)
	if err != nil {
		s.t.Fatal(err)
	}
	if r != nil {
		b, err := json.Marshal(objs)
		if err != nil {
			s.t.Fatal(err)
		}
		var list []map[string]any
		if err := json.Unmarshal([]byte(r.Replace(string(b))), &list); err != nil {
			s.t.Fatal(err)
		}
		objs = objs[:0]
		for _, m := range list {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	if err := manifest.Apply(context.Background(), s.c, ns, objs); err != nil {
		s.t.Fatalf("applying %s: %v", path, err)
	}
}

func (s *suite) waitSecret(ns, name string, want map[string]string) {
	s.t.Helper()
	s.poll("Secret "+ns+"/"+name, func(ctx context.Context) (bool, string) {
		var sec corev1.Secret
		if err := s.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &sec); err != nil {
			return false, err.Error()
		}
		for k, v := range want {
			if string(sec.Data[k]) != v {
				return false, fmt.Sprintf("key %s is not as expected (keys: %d)", k, len(sec.Data))
			}
		}
		return true, ""
	})
}

// secretVersions returns the resourceVersions of the synced Secrets.
func (s *suite) secretVersions() string {
	s.t.Helper()
	var out []string
	for _, k := range []client.ObjectKey{{Namespace: "quickstart", Name: "database-credentials"}, {Namespace: "vault", Name: "example-sync"}} {
		var sec corev1.Secret
		if err := s.c.Get(context.Background(), k, &sec); err != nil {
			out = append(out, k.String()+"=missing")
			continue
		}
		out = append(out, k.String()+"="+sec.ResourceVersion)
	}
	return strings.Join(out, " ")
}

// waitOperatorReady waits for exactly one Ready operator Pod other than
// old, with every other Pod of the release gone, and returns it.
func (s *suite) waitOperatorReady(old string) corev1.Pod {
	s.t.Helper()
	var ready corev1.Pod
	s.poll("the operator Pod to be Ready", func(ctx context.Context) (bool, string) {
		var pods corev1.PodList
		if err := s.c.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabels{"app.kubernetes.io/instance": release}); err != nil {
			return false, err.Error()
		}
		var states []string
		n := 0
		for _, p := range pods.Items {
			states = append(states, p.Name+":"+podState(&p))
			if p.Name != old && p.DeletionTimestamp == nil && isReady(&p) {
				ready = p
				n++
			}
		}
		return n == 1 && len(pods.Items) == 1, strings.Join(states, ", ")
	})
	return ready
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podState(p *corev1.Pod) string {
	st := string(p.Status.Phase)
	for _, c := range p.Status.ContainerStatuses {
		switch {
		case c.State.Waiting != nil:
			st += "/" + c.State.Waiting.Reason + " " + c.State.Waiting.Message
		case c.State.Terminated != nil:
			st += "/" + c.State.Terminated.Reason
		}
		st += fmt.Sprintf(" restarts=%d", c.RestartCount)
	}
	if isReady(p) {
		st += "/Ready"
	}
	return st
}

// metricsToken returns a token of a ServiceAccount allowed to read /metrics
// (what a Prometheus gets), for the operator's authenticated endpoint.
func (s *suite) metricsToken() string {
	s.t.Helper()
	ctx := context.Background()
	const name = "keyferry-test-metrics"
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: "default"}},
		},
	}
	for _, o := range objs {
		if err := s.c.Create(ctx, o); err != nil && !strings.Contains(err.Error(), "already exists") {
			s.t.Fatalf("creating %T: %v", o, err)
		}
	}
	tr, err := s.node.Clientset.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		s.t.Fatalf("requesting a token: %v", err)
	}
	return tr.Status.Token
}

// scrape reads the operator Pod's /metrics from the host over the pod
// network: HTTPS with a bearer token when secure, else plain HTTP.
func (s *suite) scrape(ctx context.Context, p corev1.Pod, token string, secure bool) (map[string]float64, error) {
	scheme := "http"
	if secure {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(p.Status.PodIP, "8080")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// The operator serves /metrics with a self-signed certificate, as
	// controller-runtime does without a configured one.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the pod's self-signed serving certificate
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("/metrics answered %d: %s", resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// waitMetric waits until the series has at least min.
func (s *suite) waitMetric(p corev1.Pod, token string, secure bool, series string, min float64) {
	s.t.Helper()
	s.poll(series+" >= "+strconv.FormatFloat(min, 'f', -1, 64), func(ctx context.Context) (bool, string) {
		m, err := s.scrape(ctx, p, token, secure)
		if err != nil {
			return false, err.Error()
		}
		return m[series] >= min, fmt.Sprintf("%s = %v", series, m[series])
	})
}

// metricSum adds every series of a metric family.
func (s *suite) metricSum(p corev1.Pod, token string, secure bool, family string) float64 {
	s.t.Helper()
	m, err := s.scrape(context.Background(), p, token, secure)
	if err != nil {
		s.t.Fatalf("scraping %s: %v", p.Name, err)
	}
	var sum float64
	for k, v := range m {
		if k == family || strings.HasPrefix(k, family+"{") {
			sum += v
		}
	}
	return sum
}

// reportMemory logs the operator container's memory from its cgroup (v1
// memory controller, the kubelet's cgroupfs layout): the working set (usage
// less inactive file pages, as the kubelet computes it) and the RSS.
func (s *suite) reportMemory(p corev1.Pod) {
	s.t.Helper()
	var id string
	for _, c := range p.Status.ContainerStatuses {
		if c.Name == "keyferry" {
			_, id, _ = strings.Cut(c.ContainerID, "://")
		}
	}
	if id == "" {
		s.t.Fatalf("no container ID for keyferry in %s", p.Name)
	}
	var dir string
	_ = filepath.WalkDir("/sys/fs/cgroup/memory/kubepods", func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == id {
			dir = path
			return filepath.SkipAll
		}
		return nil
	})
	if dir == "" {
		s.t.Fatalf("no memory cgroup for container %s", id)
	}
	read := func(name string) map[string]float64 {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			s.t.Fatal(err)
		}
		out := map[string]float64{}
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			if len(f) == 1 {
				f = []string{"value", f[0]}
			}
			if len(f) == 2 {
				v, _ := strconv.ParseFloat(f[1], 64)
				out[f[0]] = v
			}
		}
		return out
	}
	usage := read("memory.usage_in_bytes")["value"]
	stat := read("memory.stat")
	const mib = 1 << 20
	s.t.Logf("operator Pod memory at rest (cgroup): working set %.1f MiB, RSS %.1f MiB, usage %.1f MiB",
		(usage-stat["total_inactive_file"])/mib, stat["total_rss"]/mib, usage/mib)
}
