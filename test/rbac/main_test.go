// Package rbac proves that the RBAC the Helm chart renders is enough for
// what keyferry does, by running the operator as the chart's ServiceAccount:
// the chart is rendered with `helm template`, its CRDs, ServiceAccount,
// (Cluster)Roles and bindings are applied to a real kube-apiserver, a token
// for the ServiceAccount is minted with TokenRequest, and the operator runs
// in-process with a client configuration that holds only that bearer token
// (never the admin identity) and the flags the chart's Deployment passes.
// It then syncs ExternalSecrets (fake, kubernetes and Azure Key Vault
// providers, ServiceAccount tokens requested with TokenRequest, templates
// from a ConfigMap, a Secret deleted by deletionPolicy), a
// ClusterExternalSecret across namespaces and a SecretSync, and reads its
// metrics as Prometheus would. A missing permission
// shows up as an object that never becomes Ready or as a "forbidden" line in
// the operator's log, and fails the test.
//
// The API server runs with the OwnerReferencesPermissionEnforcement admission
// plugin, as many production clusters do, so the ownerReferences with
// blockOwnerDeletion the operator writes are checked against the
// <kind>/finalizers permissions too.
package rbac

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/manifest"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	"github.com/keyferry/keyferry/test/chart"
)

// releaseNamespace is where the chart is "installed".
const releaseNamespace = "keyferry-system"

var (
	// env wraps the admin client for testenv's helpers (Apply, WaitReady,
	// Events...); it runs no operator of its own.
	env *testenv.Env
	// admin is the API server's admin configuration: used to set the test
	// up and to check results, never by the operator.
	admin *rest.Config
	// logs holds everything the operators, controller-runtime and
	// client-go log, at debug level.
	logs = &testenv.LogBuffer{}
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	logger := testenv.DebugLogger(logs)
	log.SetLogger(logger)
	// client-go's reflectors and event broadcasters log through klog: a
	// refused list or watch shows up here.
	klog.SetLogger(logger)

	root, err := devcluster.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := devcluster.BinaryDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		fmt.Fprintf(os.Stderr, "control plane binaries not found in %s (run `make control-plane`): %v\n", dir, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	crds, err := chartCRDs(ctx, root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rendering the chart's CRDs:", err)
		return 1
	}
	te := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		CRDs:                     crds,
		ControlPlaneStartTimeout: time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	te.ControlPlane.GetAPIServer().Configure().Append("enable-admission-plugins", "OwnerReferencesPermissionEnforcement")
	admin, err = te.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		return 1
	}
	defer func() { _ = te.Stop() }()
	c, err := client.New(admin, client.Options{Scheme: operator.NewScheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env = &testenv.Env{Client: c, Root: root}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// chartCRDs renders the chart with its defaults and returns its CRDs: the
// API server serves exactly what the chart installs.
func chartCRDs(ctx context.Context, root string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	objs, err := chart.Template(ctx, root, chart.Options{Namespace: releaseNamespace})
	if err != nil {
		return nil, err
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, o := range chart.Find(objs, "CustomResourceDefinition") {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, crd); err != nil {
			return nil, fmt.Errorf("CRD %s: %w", o.GetName(), err)
		}
		out = append(out, crd)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the chart renders no CRD")
	}
	return out, nil
}

// install renders the chart with values and applies what a cluster
// administrator's `helm install` would create for the operator's identity:
// the ServiceAccount, (Cluster)Roles and bindings. It returns the rendered
// objects.
func install(t *testing.T, release string, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := chart.Template(ctxFor(t, 2*time.Minute), env.Root, chart.Options{Release: release, Namespace: releaseNamespace, Values: values})
	if err != nil {
		t.Fatal(err)
	}
	var identity []*unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			identity = append(identity, o)
		case "CustomResourceDefinition", "Deployment":
		default:
			t.Fatalf("the chart renders a %s (%s) this test does not know", o.GetKind(), o.GetName())
		}
	}
	for _, o := range identity {
		if ns := o.GetNamespace(); ns != "" && ns != releaseNamespace {
			ensureNamespace(t, ns)
		}
	}
	if err := manifest.Apply(ctxFor(t, time.Minute), env.Client, releaseNamespace, identity); err != nil {
		t.Fatalf("applying the chart's RBAC: %v", err)
	}
	waitForBindings(t, identity)
	return objs
}

// waitForBindings waits until the API server's authorizer grants every rule
// of every role the chart binds to a ServiceAccount: the RBAC authorizer
// reads roles and bindings through informers, so a rule applied a moment ago
// may not be in force yet, and an operator (or an access check) started
// before that would be refused for a reason that has nothing to do with the
// chart.
func waitForBindings(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	roles := map[string]*unstructured.Unstructured{} // "Kind/namespace/name"
	for _, o := range objs {
		if k := o.GetKind(); k == "Role" || k == "ClusterRole" {
			roles[k+"/"+o.GetNamespace()+"/"+o.GetName()] = o
		}
	}
	for _, b := range objs {
		if k := b.GetKind(); k != "RoleBinding" && k != "ClusterRoleBinding" {
			continue
		}
		roleKind, _, _ := unstructured.NestedString(b.Object, "roleRef", "kind")
		roleName, _, _ := unstructured.NestedString(b.Object, "roleRef", "name")
		roleNS := ""
		if roleKind == "Role" {
			roleNS = b.GetNamespace()
		}
		role, ok := roles[roleKind+"/"+roleNS+"/"+roleName]
		if !ok {
			continue
		}
		subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
		rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
		for _, sub := range subjects {
			subj, _ := sub.(map[string]any)
			if subj["kind"] != "ServiceAccount" {
				continue
			}
			user := fmt.Sprintf("system:serviceaccount:%v:%v", subj["namespace"], subj["name"])
			for _, r := range rules {
				attrs := firstOfRule(r)
				if attrs == nil {
					continue
				}
				attrs.Namespace = b.GetNamespace() // "" for a ClusterRoleBinding
				what := fmt.Sprintf("%s may %s %s/%s %q in %q (%s %s)", user, attrs.Verb, attrs.Group, attrs.Resource, attrs.Name, attrs.Namespace, b.GetKind(), b.GetName())
				testenv.Eventually(t, what, func(ctx context.Context) (bool, string) {
					ok, err := allowed(ctx, user, attrs)
					if err != nil {
						return false, err.Error()
					}
					return ok, "not allowed yet"
				})
			}
		}
	}
}

// firstOfRule turns the first verb, group, resource and resource name of a
// resource rule into the attributes of an access check (nil for a
// non-resource rule).
func firstOfRule(rule any) *authorizationv1.ResourceAttributes {
	r, _ := rule.(map[string]any)
	first := func(field string) (string, bool) {
		l, _ := r[field].([]any)
		if len(l) == 0 {
			return "", false
		}
		v, _ := l[0].(string)
		return v, true
	}
	verb, okVerb := first("verbs")
	resource, okRes := first("resources")
	if !okVerb || !okRes {
		return nil
	}
	group, _ := first("apiGroups")
	name, _ := first("resourceNames")
	sub := ""
	if res, s, ok := strings.Cut(resource, "/"); ok {
		resource, sub = res, s
	}
	return &authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Subresource: sub, Name: name}
}

// allowed asks the API server (as admin) whether user may do what attrs say.
func allowed(ctx context.Context, user string, attrs *authorizationv1.ResourceAttributes) (bool, error) {
	ns, _, _ := strings.Cut(strings.TrimPrefix(user, "system:serviceaccount:"), ":")
	res, err := kubernetes.NewForConfigOrDie(admin).AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               user,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: attrs,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return res.Status.Allowed, nil
}

func ensureNamespace(t *testing.T, name string, labels ...string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	for i := 0; i+1 < len(labels); i += 2 {
		ns.Labels[labels[i]] = labels[i+1]
	}
	err := env.Client.Create(ctxFor(t, time.Minute), ns)
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// serviceAccountConfig mints a token for the ServiceAccount with
// TokenRequest and returns a client configuration that holds only that
// token and the API server's CA, after checking with a SelfSubjectReview
// that the API server sees the ServiceAccount.
func serviceAccountConfig(t *testing.T, namespace, name string) *rest.Config {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	cs := kubernetes.NewForConfigOrDie(admin)
	secs := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for %s/%s: %v", namespace, name, err)
	}
	cfg := &rest.Config{
		Host:            admin.Host,
		TLSClientConfig: rest.TLSClientConfig{CAData: admin.CAData},
		BearerToken:     tr.Status.Token,
	}
	self, err := kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview as %s/%s: %v", namespace, name, err)
	}
	if want := "system:serviceaccount:" + namespace + ":" + name; self.Status.UserInfo.Username != want {
		t.Fatalf("the API server sees %q, want %q", self.Status.UserInfo.Username, want)
	}
	return cfg
}

// optionsFromArgs turns the container arguments the chart renders into the
// operator's options, as cmd/keyferry's `controller` command does. A flag
// this parser does not know fails the test, so the chart cannot pass
// something the test does not model.
func optionsFromArgs(args []string) (operator.Options, error) {
	var opts operator.Options
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", "")
	fs.StringVar(&opts.HealthAddr, "health-probe-bind-address", ":8081", "")
	fs.BoolVar(&opts.MetricsSecure, "metrics-secure", true, "")
	fs.BoolVar(&opts.LeaderElection, "leader-elect", false, "")
	fs.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "")
	fs.IntVar(&opts.Concurrency, "concurrent", 16, "")
	fs.StringVar(&opts.ControllerClass, "controller-class", "", "")
	fs.StringVar(&opts.Namespace, "namespace", "", "")
	clusterStores := fs.Bool("enable-cluster-store-reconciler", true, "")
	clusterExternalSecrets := fs.Bool("enable-cluster-external-secret-reconciler", true, "")
	clusterPushSecrets := fs.Bool("enable-cluster-push-secret-reconciler", true, "")
	secretSyncs := fs.Bool("enable-secretsync-reconciler", true, "")
	fs.BoolVar(&opts.RestartWorkloads, "restart-workloads", false, "")
	fs.DurationVar(&opts.RestartDebounce, "restart-debounce", 2*time.Second, "")
	fs.String("log-level", "info", "") // the tests log at debug level
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	opts.DisableClusterStores = !*clusterStores
	opts.DisableClusterExternalSecrets = !*clusterExternalSecrets
	opts.DisableClusterPushSecrets = !*clusterPushSecrets
	opts.DisableSecretSync = !*secretSyncs
	return opts, nil
}

// running is an operator started by startOperator.
type running struct {
	*operator.Operator
	// metricsURL is the operator's /metrics endpoint.
	metricsURL string
	// logStart is where this operator's share of the log begins.
	logStart int
}

// startOperator runs the operator as the identity cfg holds, with the
// options the chart's Deployment args give, until the test ends. Only the
// listen addresses change: metrics on a free loopback port, no health
// endpoint.
func startOperator(t *testing.T, cfg *rest.Config, objs []*unstructured.Unstructured, reg *provider.Registry) *running {
	t.Helper()
	args, err := chart.Args(objs)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := optionsFromArgs(args)
	if err != nil {
		t.Fatalf("the chart's args %v: %v", args, err)
	}
	addr := testenv.FreeAddr(t)
	opts.MetricsAddr = addr
	opts.HealthAddr = "0"
	opts.Registry = reg
	opts.StartupSpread = time.Second
	opts.SkipControllerNameValidation = true
	opts.Log = log.Log.WithName("operator")

	r := &running{logStart: logs.Len()}
	scheme := "http"
	if opts.MetricsSecure {
		scheme = "https"
	}
	r.metricsURL = fmt.Sprintf("%s://%s/metrics", scheme, addr)

	// Registered before the operator starts, so it runs after it stopped.
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			for _, line := range strings.Split(logs.From(r.logStart), "\n") {
				b.WriteString(withoutStack(line) + "\n")
			}
			t.Logf("operator log:\n%s", b.String())
		}
	})
	r.Operator = testenv.StartOperator(t, cfg, opts)
	return r
}

// assertNothingForbidden fails when the API server refused the operator
// anything: every refused request is logged by the operator or client-go.
func (r *running) assertNothingForbidden(t *testing.T) {
	t.Helper()
	var refused []string
	seen := map[string]bool{}
	for _, line := range strings.Split(logs.From(r.logStart), "\n") {
		if !strings.Contains(strings.ToLower(line), "forbidden") {
			continue
		}
		line = withoutStack(line)
		if msg := line[strings.Index(line, `"msg"`)+1:]; !seen[msg] {
			seen[msg] = true
			refused = append(refused, line)
		}
	}
	if len(refused) > 0 {
		t.Fatalf("the API server refused the operator (%d distinct refusals):\n%s", len(refused), strings.Join(refused, "\n"))
	}
}

// withoutStack drops the stack trace of a JSON log line.
func withoutStack(line string) string {
	if i := strings.Index(line, `,"stacktrace"`); i >= 0 {
		return line[:i] + "}"
	}
	return line
}

// canI asks the API server (as admin) whether the ServiceAccount may do
// verb on resource in namespace ("" for all namespaces).
func canI(t *testing.T, sa, verb, group, resource, namespace string) bool {
	t.Helper()
	ok, err := allowed(ctxFor(t, time.Minute), "system:serviceaccount:"+releaseNamespace+":"+sa,
		&authorizationv1.ResourceAttributes{Namespace: namespace, Verb: verb, Group: group, Resource: resource})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// scrape reads the metrics endpoint with the bearer token (none if empty),
// as Prometheus does with the ServiceMonitor the chart renders (TLS not
// verified: the operator's certificate is self-signed).
func scrape(ctx context.Context, metricsURL, token string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test endpoint
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
