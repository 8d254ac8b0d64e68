package unsupported_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/unsupported"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// env is the control plane; each test runs its own operator (runOperator).
var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{NoOperator: true}, &env))
}

// runOperator runs the operator as operator.New assembles it, unsupported
// controllers included, until the test ends; namespace, when set, is its
// --namespace. It returns what the operator logs.
func runOperator(t *testing.T, namespace string) *testenv.LogBuffer {
	t.Helper()
	logs := &testenv.LogBuffer{}
	testenv.StartOperator(t, env.Cluster.Config, operator.Options{
		Log: testenv.DebugLogger(logs), Namespace: namespace, StartupSpread: time.Second,
		// Each test runs its own operator in this process.
		SkipControllerNameValidation: true,
	})
	return logs
}

// kindOf returns the entry of unsupported.Kinds for kind.
func kindOf(t *testing.T, gv schema.GroupVersion, kind string) unsupported.Kind {
	t.Helper()
	for _, k := range unsupported.Kinds() {
		if k.GroupVersionKind == gv.WithKind(kind) {
			return k
		}
	}
	t.Fatalf("%s %s is not in unsupported.Kinds()", gv, kind)
	return unsupported.Kind{}
}

func get(ctx context.Context, gvk schema.GroupVersionKind, ns, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u)
	return u, err
}

// readyCondition returns the object's Ready condition, or nil.
func readyCondition(u *unstructured.Unstructured) map[string]any {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == unsupported.ConditionReady {
			return m
		}
	}
	return nil
}

// waitUnsupported waits for Ready=False/Unsupported with k's message.
func waitUnsupported(t *testing.T, k unsupported.Kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	var obj *unstructured.Unstructured
	testenv.Eventually(t, k.Kind+" "+name+" Unsupported", func(ctx context.Context) (bool, string) {
		u, err := get(ctx, k.GroupVersionKind, ns, name)
		if err != nil {
			return false, err.Error()
		}
		c := readyCondition(u)
		if c == nil {
			return false, "no Ready condition"
		}
		if c["status"] != "False" || c["reason"] != unsupported.ReasonUnsupported || c["message"] != unsupported.Message(k) {
			return false, fmt.Sprintf("Ready = %v", c)
		}
		obj = u
		return true, ""
	})
	return obj
}

// unsupportedEvents counts the Warning Events with reason Unsupported about
// ns/name.
func unsupportedEvents(ctx context.Context, t *testing.T, ns, name string) int {
	t.Helper()
	evs, err := env.Events(ctx, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Reason == unsupported.ReasonUnsupported && ev.Type == corev1.EventTypeWarning {
			n++
		}
	}
	return n
}

// waitOneEvent waits for exactly one Unsupported Event about ns/name.
func waitOneEvent(t *testing.T, k unsupported.Kind, ns, name string) {
	t.Helper()
	testenv.Eventually(t, "one Unsupported Event about "+name, func(ctx context.Context) (bool, string) {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, ev := range evs {
			if ev.Reason == unsupported.ReasonUnsupported && ev.Type == corev1.EventTypeWarning {
				if ev.Note != unsupported.Message(k) || ev.Regarding.Kind != k.Kind {
					return false, fmt.Sprintf("Event %s %q about %s", ev.Reason, ev.Note, ev.Regarding.Kind)
				}
				n++
			}
		}
		return n == 1, fmt.Sprintf("%d Unsupported Events", n)
	})
}

// ESO's Password and UUID examples: keyferry runs these generators for
// ExternalSecrets (docs/generators.md) and, like ESO, gives their objects no
// status. An Unsupported condition an earlier keyferry wrote is removed.
func TestESOPasswordAndUUIDGeneratorsApplyAndLoseAStaleUnsupportedCondition(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	env.Apply(t, ns, "examples/eso-api/generator-password.yaml")
	env.Apply(t, ns, "examples/eso-api/generator-uuid.yaml")
	var p genv1alpha1.Password
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "my-password"}, &p); err != nil {
		t.Fatalf("reading the Password through keyferry's types: %v", err)
	}
	s := p.Spec
	if s.Length != 42 || s.Digits == nil || *s.Digits != 5 || s.Symbols == nil || *s.Symbols != 5 ||
		s.SymbolCharacters == nil || *s.SymbolCharacters != "-_$@" || s.NoUpper || !s.AllowRepeat {
		t.Errorf("spec = %+v; want ESO's example as written", s)
	}
	if s.Encoding == nil || *s.Encoding != "raw" {
		t.Errorf("spec.encoding = %v; want ESO's default raw", s.Encoding)
	}
	// The condition an earlier keyferry wrote on the Password, beside a
	// condition of someone else's.
	p.Status.Conditions = []genv1alpha1.GeneratorCondition{
		{Type: genv1alpha1.GeneratorReady, Status: corev1.ConditionFalse, Reason: unsupported.ReasonUnsupported, Message: "keyferry does not implement Password yet", LastTransitionTime: esv1.NewTime(time.Now())},
		{Type: "Other", Status: corev1.ConditionTrue, Reason: "Kept", LastTransitionTime: esv1.NewTime(time.Now())},
	}
	if err := env.Client.Status().Update(ctx, &p); err != nil {
		t.Fatalf("writing the old status: %v", err)
	}
	var u genv1alpha1.UUID
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "my-uuid"}, &u); err != nil {
		t.Fatal(err)
	}
	u.Status.Conditions = p.Status.Conditions
	if err := env.Client.Status().Update(ctx, &u); err != nil {
		t.Fatalf("writing the old status: %v", err)
	}

	runOperator(t, ns)
	// One controller serves both kinds: each object loses the condition.
	for kind, name := range map[string]string{"Password": "my-password", "UUID": "my-uuid"} {
		gvk := genv1alpha1.GroupVersion.WithKind(kind)
		testenv.Eventually(t, "the stale Unsupported condition of the "+kind+" removed", func(ctx context.Context) (bool, string) {
			u, err := get(ctx, gvk, ns, name)
			if err != nil {
				return false, err.Error()
			}
			if c := readyCondition(u); c != nil {
				return false, fmt.Sprintf("Ready = %v", c)
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			return len(conds) == 1, fmt.Sprintf("%d conditions; want the other one kept", len(conds))
		})
	}
	for _, name := range []string{"my-password", "my-uuid"} {
		if n := unsupportedEvents(ctx, t, ns, name); n != 0 {
			t.Errorf("%s: %d Unsupported Events; want none", name, n)
		}
	}
}

func TestAnOpaqueGeneratorKeepsEveryField(t *testing.T) {
	ns := env.Namespace(t)
	runOperator(t, ns)
	// ESO's GitHub generator, whose spec keyferry keeps opaque.
	env.Apply(t, ns, `apiVersion: generators.external-secrets.io/v1alpha1
kind: GithubAccessToken
metadata:
  name: github-gen
spec:
  appID: "0000000"
  installID: "00000000"
  repositories: [my-repo]
  auth:
    privateKey:
      secretRef:
        name: github-app-pem
        key: key
`)
	k := kindOf(t, genv1alpha1.GroupVersion, "GithubAccessToken")
	obj := waitUnsupported(t, k, ns, "github-gen")
	if got, _, _ := unstructured.NestedString(obj.Object, "spec", "auth", "privateKey", "secretRef", "name"); got != "github-app-pem" {
		t.Errorf("spec.auth.privateKey.secretRef.name = %q; want it preserved", got)
	}
	if got, _, _ := unstructured.NestedStringSlice(obj.Object, "spec", "repositories"); len(got) != 1 || got[0] != "my-repo" {
		t.Errorf("spec.repositories = %q; want it preserved", got)
	}
}

func TestANamespacedOperatorLeavesOtherNamespacesAndClusterKindsAlone(t *testing.T) {
	ctx := context.Background()
	served, other := env.Namespace(t), env.Namespace(t)
	logs := runOperator(t, served)
	pw := kindOf(t, genv1alpha1.GroupVersion, "GithubAccessToken")
	const password = `apiVersion: generators.external-secrets.io/v1alpha1
kind: GithubAccessToken
metadata:
  name: %s
spec: {}
`
	// Named after the namespace: a ClusterGenerator outlives the test.
	clusterGenerator := "scoped-" + served
	env.Apply(t, "", fmt.Sprintf(`apiVersion: generators.external-secrets.io/v1alpha1
kind: ClusterGenerator
metadata:
  name: %s
spec:
  kind: UUID
  generator:
    uuidSpec: {}
`, clusterGenerator))
	env.Apply(t, other, fmt.Sprintf(password, "elsewhere"))
	env.Apply(t, served, fmt.Sprintf(password, "here"))
	// Created after the others: once it is reported, they would have been.
	waitUnsupported(t, pw, served, "here")

	if u, err := get(ctx, pw.GroupVersionKind, other, "elsewhere"); err != nil || readyCondition(u) != nil {
		t.Errorf("a GithubAccessToken in another namespace: condition %v (err %v); want none", readyCondition(u), err)
	}
	cg := kindOf(t, genv1alpha1.GroupVersion, "ClusterGenerator")
	if u, err := get(ctx, cg.GroupVersionKind, "", clusterGenerator); err != nil || readyCondition(u) != nil {
		t.Errorf("a ClusterGenerator: condition %v (err %v); want none", readyCondition(u), err)
	}
	for _, kind := range []string{"ClusterGenerator"} {
		if !strings.Contains(logs.String(), `"msg":"not watching a cluster-scoped kind: --namespace serves one namespace","kind":"`+kind+`"`) {
			t.Errorf("the operator did not log that it leaves %s alone", kind)
		}
	}
}

func TestAKindWithoutItsCRDIsNotWatched(t *testing.T) {
	ns := env.Namespace(t)
	logs := &testenv.LogBuffer{}
	logger := testenv.DebugLogger(logs)
	mgr, err := ctrl.NewManager(env.Cluster.Config, ctrl.Options{
		Logger: logger, Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Controller: config.Controller{SkipNameValidation: ptr(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	missing := unsupported.Kind{GroupVersionKind: schema.GroupVersionKind{Group: "generators.external-secrets.io", Version: "v1alpha1", Kind: "NotInstalled"}, Namespaced: true, Consequence: "nothing"}
	pw := kindOf(t, genv1alpha1.GroupVersion, "GithubAccessToken")
	if err := unsupported.Setup(mgr, unsupported.Options{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("keyferry"), Namespace: ns, Log: logger,
		Kinds: []unsupported.Kind{missing, pw},
	}); err != nil {
		t.Fatalf("Setup with a kind whose CRD is not installed: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	testenv.RunManager(ctx, t, cancel, mgr)
	// The manager runs, and serves the kinds that are installed.
	env.Apply(t, ns, `apiVersion: generators.external-secrets.io/v1alpha1
kind: GithubAccessToken
metadata:
  name: still-served
spec: {}
`)
	waitUnsupported(t, pw, ns, "still-served")
	if !strings.Contains(logs.String(), `"msg":"not watching a kind whose CRD is not installed","kind":"NotInstalled"`) {
		t.Errorf("no log line about the kind that is not installed:\n%s", logs.String())
	}
}

func ptr[T any](v T) *T { return &v }
