package providers

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// webhookPushExampleDir holds ESO's webhook push example (store and
// PushSecret), unchanged.
const webhookPushExampleDir = "examples/pushsecret/webhook"

// webhookRoutes sends the hosts the webhook stores name to local servers,
// as DNS sends them to the real services (the provider's test-only
// MapAddr; the request, its Host header and TLS name are unchanged).
var webhookRoutes = &webhookRouter{routes: map[string]string{}}

type webhookRouter struct {
	mu     sync.Mutex
	routes map[string]string // host:port → local address
}

func (r *webhookRouter) mapAddr(addr string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if to, ok := r.routes[addr]; ok {
		return to
	}
	return addr
}

// route sends host:port to srv until the test ends.
func (r *webhookRouter) route(t *testing.T, hostPort string, srv *httptest.Server) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routes[hostPort] = srv.Listener.Addr().String()
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.routes, hostPort)
	})
}

// recordService is a secret service behind a webhook: records by the
// query parameter id; GET answers a record or 404, POST and PUT store the
// body, DELETE removes the record. An id starting with "fail-" answers
// 500 to a write, echoing what it was sent.
type recordService struct {
	*httptest.Server
	mu       sync.Mutex
	records  map[string]string
	requests []seenRequest
}

type seenRequest struct {
	method, uri, auth, contentType, body string
}

func (r seenRequest) String() string { return r.method + " " + r.uri }

func startRecordService(t *testing.T) *recordService {
	s := &recordService{records: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := r.URL.Query().Get("id")
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests = append(s.requests, seenRequest{r.Method, r.RequestURI, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(body)})
		switch r.Method {
		case http.MethodGet:
			v, ok := s.records[id]
			if !ok {
				http.NotFound(w, r)
				return
			}
			fmt.Fprint(w, v)
		case http.MethodPost, http.MethodPut:
			if strings.HasPrefix(id, "fail-") {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write(body)
				return
			}
			s.records[id] = string(body)
		case http.MethodDelete:
			if _, ok := s.records[id]; !ok {
				http.NotFound(w, r)
				return
			}
			delete(s.records, id)
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *recordService) record(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.records[id]
	return v, ok
}

func (s *recordService) set(id, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[id] = v
}

// seen returns the requests of method the service received.
func (s *recordService) seen(method string) []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []seenRequest
	for _, r := range s.requests {
		if r.method == method {
			out = append(out, r)
		}
	}
	return out
}

// ESO's webhook push example (docs/provider/webhook.md, "Push secret"),
// store and PushSecret applied unchanged, pushes test-secret's testsecret
// as ESO does: after the existence check (GET), a POST to
// /push?id=remotekey&secret=testsecret with the JSON body of the store's
// template and the Basic credentials of webhook-credentials. A change of
// the source is pushed again.
func TestWebhookPushESOExamplePushesUnchanged(t *testing.T) {
	ns := env.Namespace(t)
	svc := startRecordService(t)
	webhookRoutes.route(t, "httpbin.org:80", svc.Server)
	password := "pw-" + canary
	env.Apply(t, ns, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: webhook-credentials\n  labels:\n    external-secrets.io/type: webhook\nstringData:\n  username: keyferry\n  password: "+password+"\n")
	value := "s3cr3t-" + canary
	env.Apply(t, ns, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: test-secret\nstringData:\n  testsecret: "+value+"\n")
	env.Apply(t, ns, webhookPushExampleDir)
	deleteGCPPushSecretsOnCleanup(t, ns, "pushsecret-example")

	t.Run("the unchanged example pushes", func(t *testing.T) {
		waitGCPPushReady(t, ns, "pushsecret-example", corev1.ConditionTrue, pushsecret.ReasonSynced)
		want := `{"secret-field": "` + value + `"}`
		if got, _ := svc.record("remotekey"); got != want {
			t.Fatalf("the service holds %d bytes for remotekey, want the example's body with the value", len(got))
		}
		posts := svc.seen(http.MethodPost)
		if len(posts) == 0 {
			t.Fatal("no POST reached the service")
		}
		p := posts[len(posts)-1]
		if p.uri != "/push?id=remotekey&secret=testsecret" {
			t.Errorf("POST %s, want /push?id=remotekey&secret=testsecret", p.uri)
		}
		if wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("keyferry:"+password)); p.auth != wantAuth {
			t.Errorf("the push does not carry the Basic credentials of webhook-credentials")
		}
		if p.contentType != "application/json" {
			t.Errorf("Content-Type %q, want application/json", p.contentType)
		}
		gets := svc.seen(http.MethodGet)
		if len(gets) == 0 || gets[0].uri != "/push?id=remotekey&secret=" {
			t.Errorf("existence checks %v, want GET /push?id=remotekey&secret= (ESO's check, url rendered for the remote key)", gets)
		}
	})

	t.Run("a changed source is pushed again", func(t *testing.T) {
		updateGCPPushSource(t, ns, "test-secret", map[string]string{"testsecret": "n3w-" + canary})
		testenv.Eventually(t, "the new value pushed", func(context.Context) (bool, string) {
			got, _ := svc.record("remotekey")
			return got == `{"secret-field": "n3w-`+canary+`"}`, fmt.Sprintf("the service holds %d bytes", len(got))
		})
	})
	assertGCPPushNoLeak(t, ns, "pushsecret-example")
}

// A webhook PushSecret's life: a push with the store's method (PUT), the
// value as the default body; deletionPolicy Delete sends DELETE for what
// it pushed when the PushSecret is deleted; a server error leaves Ready
// False ProviderUnreachable with a Warning Event naming the status, never
// the value; updatePolicy IfNotExists leaves an existing record alone.
func TestWebhookPushLifecycle(t *testing.T) {
	ns := env.Namespace(t)
	svc := startRecordService(t)
	webhookRoutes.route(t, "secrets.webhook.example:80", svc.Server)
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: records
spec:
  provider:
    webhook:
      method: PUT
      url: "http://secrets.webhook.example/records?id={{ .remoteRef.remoteKey }}"
`)
	value := "db-pass-" + canary
	env.Apply(t, ns, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: "+value+"\n")
	pushSecret := func(name, policy, deletion, remoteKey string) string {
		return fmt.Sprintf(`apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: %s
spec:
  refreshInterval: 1h
  updatePolicy: %s
  deletionPolicy: %s
  secretStoreRefs:
    - name: records
      kind: SecretStore
  selector:
    secret:
      name: db
  data:
    - match:
        secretKey: password
        remoteRef:
          remoteKey: %s
`, name, policy, deletion, remoteKey)
	}
	deleteGCPPushSecretsOnCleanup(t, ns, "db-push", "db-fail", "db-keep")

	t.Run("pushes with the store's method and deletes what it pushed", func(t *testing.T) {
		env.Apply(t, ns, pushSecret("db-push", "Replace", "Delete", "db-password"))
		waitGCPPushReady(t, ns, "db-push", corev1.ConditionTrue, pushsecret.ReasonSynced)
		if got, _ := svc.record("db-password"); got != value {
			t.Fatalf("the service holds %d bytes for db-password, want the value", len(got))
		}
		if puts := svc.seen(http.MethodPut); len(puts) == 0 || puts[0].uri != "/records?id=db-password" {
			t.Fatalf("PUTs %v, want PUT /records?id=db-password", puts)
		}
		deleteGCPPushSecret(t, ns, "db-push")
		if _, ok := svc.record("db-password"); ok {
			t.Fatal("db-password still exists after the PushSecret with deletionPolicy Delete was deleted")
		}
		if dels := svc.seen(http.MethodDelete); len(dels) != 1 || dels[0].uri != "/records?id=db-password" || dels[0].body != "" {
			t.Fatalf("DELETEs %v, want one DELETE /records?id=db-password without a body", dels)
		}
	})

	t.Run("a server error is a condition and an Event without the value", func(t *testing.T) {
		env.Apply(t, ns, pushSecret("db-fail", "Replace", "None", "fail-db"))
		ps := waitGCPPushReady(t, ns, "db-fail", corev1.ConditionFalse, engine.ReasonUnreachable)
		msg := gcpPushReadyCondition(ps).Message
		if !strings.Contains(msg, `pushing "fail-db"`) || !strings.Contains(msg, "500") {
			t.Fatalf("Ready message %q does not name the remote key and the status", msg)
		}
		waitGCPPushWarning(t, ns, "db-fail", engine.ReasonUnreachable)
		if puts := svc.seen(http.MethodPut); !strings.Contains(fmt.Sprint(puts), "fail-db") {
			t.Fatalf("the failing push never reached the service: %v", puts)
		}
	})

	t.Run("IfNotExists leaves an existing record alone, and Delete does not delete it", func(t *testing.T) {
		svc.set("kept", "theirs")
		env.Apply(t, ns, pushSecret("db-keep", "IfNotExists", "Delete", "kept"))
		ps := waitGCPPushReady(t, ns, "db-keep", corev1.ConditionTrue, pushsecret.ReasonSynced)
		if msg := gcpPushReadyCondition(ps).Message; !strings.Contains(msg, "unchanged") {
			t.Errorf("Ready message %q does not say the existing record was left", msg)
		}
		if got, _ := svc.record("kept"); got != "theirs" {
			t.Fatal("the existing record was overwritten under IfNotExists")
		}
		for _, r := range svc.seen(http.MethodPut) {
			if strings.Contains(r.uri, "id=kept") {
				t.Fatalf("%v sent under IfNotExists", r)
			}
		}
		if n := len(ps.Status.SyncedPushSecrets); n != 0 {
			t.Fatalf("syncedPushSecrets = %v; the record keyferry did not push is not keyferry's", ps.Status.SyncedPushSecrets)
		}
		assertGCPPushNoLeak(t, ns, "db-keep")
		// A webhook record carries no mark: only what the PushSecret
		// pushed is deleted with it.
		deleteGCPPushSecret(t, ns, "db-keep")
		if got, ok := svc.record("kept"); !ok || got != "theirs" {
			t.Fatal("deletionPolicy Delete deleted a record keyferry did not push")
		}
		for _, r := range svc.seen(http.MethodDelete) {
			if strings.Contains(r.uri, "id=kept") {
				t.Fatalf("%v sent for a record keyferry did not push", r)
			}
		}
	})
	assertGCPPushNoLeak(t, ns, "db-push", "db-fail")
}
