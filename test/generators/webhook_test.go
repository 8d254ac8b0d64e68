package generators

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/all"
	"github.com/keyferry/keyferry/internal/provider/webhook"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// esoWebhookHost is the host of ESO's Webhook generator example.
const esoWebhookHost = "httpbin.org:80"

// httpbin answers GET /get as httpbin.org does (the query's arguments
// under "args") and records every request it gets.
type httpbin struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
}

func startHTTPBin(t *testing.T) *httpbin {
	t.Helper()
	h := &httpbin{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.requests = append(h.requests, r.Clone(context.Background()))
		h.mu.Unlock()
		if r.URL.Path != "/get" {
			http.NotFound(w, r)
			return
		}
		args := map[string]string{}
		for k, v := range r.URL.Query() {
			args[k] = v[0]
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"args": args, "headers": map[string]string{"Host": r.Host}, "url": "http://" + r.Host + r.URL.String()})
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *httpbin) hits() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.requests)
}

// saw says whether any request's URL or headers held s.
func (h *httpbin) saw(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.requests {
		if strings.Contains(r.URL.String(), s) {
			return true
		}
		for _, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, s) {
					return true
				}
			}
		}
	}
	return false
}

// startWebhook is startWith with the webhook provider dialing srv for the
// example's host (the request, its Host header and URL unchanged).
func startWebhook(t *testing.T, ns string, srv *httpbin, policy provider.Policy) *proc {
	t.Helper()
	local := strings.TrimPrefix(srv.URL, "http://")
	reg := all.Registry(all.Options{Config: env.Cluster.Config})
	reg.Register("webhook", webhook.NewWithOptions(webhook.Options{MapAddr: func(addr string) string {
		if addr == esoWebhookHost {
			return local
		}
		return addr
	}}))
	return startWith(t, ns, reg, policy)
}

// TestESOWebhookExample applies ESO's Webhook generator example as it is.
// It sends the credentials of its Secret over plain http:// to httpbin.org,
// which keyferry refuses until the platform runs it with
// --allow-insecure-http; then the ExternalSecret gets the members of
// $.args as keys, with one request, and a restarted operator does not ask
// again.
func TestESOWebhookExample(t *testing.T) {
	srv := startHTTPBin(t)
	ns := env.Namespace(t)
	p1 := startWebhook(t, ns, srv, provider.Policy{})
	env.Apply(t, ns, "examples/generators/webhook.yaml")
	es := env.WaitReady(t, ns, "webhook", metav1.ConditionFalse, engine.ReasonInvalidGeneratorSpec)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, "Webhook webhook") || !strings.Contains(msg, "plain http://") {
		t.Fatalf("message %q does not name the generator and the plain http rule", msg)
	}
	waitEvent(t, ns, "webhook", engine.ReasonInvalidGeneratorSpec)
	if srv.hits() != 0 {
		t.Fatal("the credentials were sent over plain http although the operator does not allow it")
	}

	p1.stop(t)
	// The new operator's first look syncs the ExternalSecret: no force-sync,
	// which would race that first sync (from the head start or the
	// controller) and generate a second time.
	p2 := startWebhook(t, ns, srv, provider.Policy{AllowInsecureHTTP: true})
	es = env.WaitReady(t, ns, "webhook", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	s := env.GetSecret(t, ns, "webhook-secret")
	if len(s.Data) != 1 || string(s.Data["parameter"]) != "test" {
		t.Fatalf("webhook-secret has keys %v, want parameter: test", keysOf(s.Data))
	}
	if srv.hits() != 1 {
		t.Fatalf("the generation made %d requests, want 1", srv.hits())
	}
	srv.mu.Lock()
	req := srv.requests[0]
	srv.mu.Unlock()
	if u, pw, ok := req.BasicAuth(); !ok || u != "test" || pw != "test" || req.Host != "httpbin.org" || req.URL.String() != "/get?parameter=test" {
		t.Fatalf("request %s %s (Host %s) is not the example's", req.Method, req.URL, req.Host)
	}

	// A restart does not regenerate.
	synced := es.Status.SyncedResourceVersion
	rv, record := s.ResourceVersion, s.Annotations[engine.AnnotationGenerated]
	p2.stop(t)
	p3 := startWebhook(t, ns, srv, provider.Policy{AllowInsecureHTTP: true})
	p3.waitLogged(t, "the new operator's first look at webhook", `"refresh decision"`, `"reason":"FirstLookSinceStart"`, `"namespace":"`+ns+`"`)
	patchES(t, ns, "webhook", func(es *esv1.ExternalSecret) { es.Labels = map[string]string{"restart": "1"} })
	waitSyncedAt(t, ns, "webhook", synced)
	s = env.GetSecret(t, ns, "webhook-secret")
	if s.ResourceVersion != rv || s.Annotations[engine.AnnotationGenerated] != record || srv.hits() != 1 {
		t.Fatalf("regenerated across the restart (resourceVersion %s, was %s; %d requests)", s.ResourceVersion, rv, srv.hits())
	}
	p3.waitLogged(t, "the new operator kept the generated values", `"generators"`, `"reason":"GeneratedValuesKept"`, `"namespace":"`+ns+`"`)
}

// TestWebhookGeneratorStaysInItsNamespace: a namespaced Webhook generator's
// secrets are Secrets of its own namespace: one that exists only in another
// namespace is not found and never sent. Generated values and the Secret's
// credentials never show in logs, Events or status.
func TestWebhookGeneratorStaysInItsNamespace(t *testing.T) {
	const (
		canary      = "canary-e1f0c9a7b3d2"
		otherCanary = "canary-other-5b8d2e"
	)
	srv := startHTTPBin(t)
	ns, other := env.Namespace(t), env.Namespace(t)
	env.Apply(t, other, `apiVersion: v1
kind: Secret
metadata:
  name: foreign-credentials
  labels: {external-secrets.io/type: webhook}
stringData: {param: `+otherCanary+`}
`)
	p := startWebhook(t, ns, srv, provider.Policy{})
	gen := func(name, secret string) string {
		return `apiVersion: generators.external-secrets.io/v1alpha1
kind: Webhook
metadata:
  name: ` + name + `
spec:
  url: "` + srv.URL + `/get?value={{ .auth.param }}"
  result: {jsonPath: "$.args"}
  secrets:
  - name: auth
    secretRef: {name: ` + secret + `}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: ` + name + `
spec:
  refreshInterval: 1h
  target: {name: ` + name + `}
  dataFrom:
  - sourceRef:
      generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: Webhook, name: ` + name + `}
`
	}
	env.Apply(t, ns, `apiVersion: v1
kind: Secret
metadata:
  name: local-credentials
  labels: {external-secrets.io/type: webhook}
stringData: {param: `+canary+`}
---
`+gen("local", "local-credentials")+"---\n"+gen("foreign", "foreign-credentials"))

	env.WaitReady(t, ns, "local", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	if got := string(env.GetSecret(t, ns, "local").Data["value"]); got != canary {
		t.Fatal("the local generator's key is not the server's answer")
	}
	es := env.WaitReady(t, ns, "foreign", metav1.ConditionFalse, engine.ReasonInvalidGeneratorSpec)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, "secret "+ns+"/foreign-credentials") {
		t.Fatalf("message %q does not say the Secret was looked for in the generator's namespace", msg)
	}
	waitEvent(t, ns, "foreign", engine.ReasonInvalidGeneratorSpec)
	if srv.saw(otherCanary) {
		t.Fatal("a Secret of another namespace reached the webhook")
	}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "foreign"}, &corev1.Secret{}); err == nil {
		t.Fatal("a Secret was written for the failing generator")
	}
	assertNoLeak(t, ns, canary, p)
	assertNoLeak(t, ns, otherCanary, p)
}

// TestClusterGeneratorOfKindWebhook: a ClusterGenerator of kind Webhook is
// a cluster store used from the ExternalSecret's namespace: its secrets
// resolve there.
func TestClusterGeneratorOfKindWebhook(t *testing.T) {
	srv := startHTTPBin(t)
	ns := env.Namespace(t)
	name := "webhook-" + ns
	startWebhook(t, ns, srv, provider.Policy{})
	env.Apply(t, "", `apiVersion: generators.external-secrets.io/v1alpha1
kind: ClusterGenerator
metadata:
  name: `+name+`
spec:
  kind: Webhook
  generator:
    webhookSpec:
      url: "`+srv.URL+`/get?token={{ .auth.param }}"
      result: {jsonPath: "$.args"}
      secrets:
      - name: auth
        secretRef: {name: webhook-credentials}
`)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), clusterGen(name)) })
	env.Apply(t, ns, `apiVersion: v1
kind: Secret
metadata:
  name: webhook-credentials
  labels: {external-secrets.io/type: webhook}
stringData: {param: from-`+ns+`}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: cluster-webhook
spec:
  target: {name: cluster-webhook}
  dataFrom:
  - sourceRef:
      generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: ClusterGenerator, name: `+name+`}
`)
	env.WaitReady(t, ns, "cluster-webhook", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	if got := string(env.GetSecret(t, ns, "cluster-webhook").Data["token"]); got != "from-"+ns {
		t.Fatalf("token = %q, want the value of the ExternalSecret's namespace", got)
	}
}
