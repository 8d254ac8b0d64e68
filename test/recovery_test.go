package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// switchableBackend is an HTTP secret service for the webhook provider
// (GET /<key> answers {"value": "..."}) that can answer 503, be taken down
// (connections refused) and brought back on the same address.
type switchableBackend struct {
	addr  string
	calls atomic.Int64

	mu    sync.Mutex
	value string
	fail  bool
	srv   *http.Server
	// okAt is when the backend last answered after failing.
	okAt    time.Time
	failing bool
	// token, when set, is the X-Token every request must carry (401
	// otherwise).
	token string
}

func startSwitchableBackend(t *testing.T, value string) *switchableBackend {
	t.Helper()
	b := &switchableBackend{value: value}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = l.Addr().String()
	b.serve(l)
	t.Cleanup(b.down)
	return b
}

func (b *switchableBackend) serve(l net.Listener) {
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.calls.Add(1)
		b.mu.Lock()
		v, fail, token := b.value, b.fail, b.token
		b.mu.Unlock()
		if fail {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if token != "" && r.Header.Get("X-Token") != token {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		b.mu.Lock()
		if b.failing {
			b.failing, b.okAt = false, time.Now()
		}
		b.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]string{"value": v})
	})}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

func (b *switchableBackend) set(value string, fail bool) {
	b.mu.Lock()
	b.value, b.fail = value, fail
	b.failing = b.failing || fail
	b.mu.Unlock()
}

// firstAnswer returns when the backend first answered after it failed.
func (b *switchableBackend) firstAnswer() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.okAt
}

// down stops the server: connections are refused.
func (b *switchableBackend) down() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up serves again on the same address.
func (b *switchableBackend) up(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", b.addr, err)
	}
	b.serve(l)
}

// A store that fails is probed every --store-probe-interval while an
// ExternalSecret waits for it; the moment a probe succeeds the
// ExternalSecret is re-synced, not when its own retry backoff expires: the
// Secret holds the value rotated during the outage and the ExternalSecret
// is Ready within the probe interval plus 2 s of the backend's return, with
// a refreshInterval of an hour. During the outage the backend sees at most
// one call per probe interval.
func TestAStoreThatComesBackResyncsItsWaitingObjectsAtOnce(t *testing.T) {
	const (
		probe = 2 * time.Second
		class = "recovery-test"
		phase = 6 * time.Second
	)
	ns := env.Namespace(t)
	be := startSwitchableBackend(t, "v1")
	logs := &testenv.LogBuffer{}
	testenv.StartOperator(t, env.Cluster.Config, operator.Options{
		Log: testenv.DebugLogger(logs), StartupSpread: time.Second, SkipControllerNameValidation: true,
		// Its own operator, for its own class and namespace only: the
		// package's operator leaves a store of another class alone.
		ControllerClass: class, Namespace: ns, DisableSecretSync: true, DisableClusterExternalSecrets: true,
		StoreProbeInterval: probe,
	})
	ctx := context.Background()
	store := &esv1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "backend"},
		Spec: esv1.SecretStoreSpec{Controller: class, Provider: &esv1.SecretStoreProvider{Webhook: &esv1.WebhookProvider{
			URL:     "http://" + be.addr + "/{{ .remoteRef.key }}",
			Timeout: &esv1.Duration{Duration: 2 * time.Second},
			Result:  esv1.WebhookResult{JSONPath: "$.value"},
		}}}}
	// Five ExternalSecrets, each reading its own key, so each needs its own
	// call once the store is back.
	const n = 5
	objs := []client.Object{store}
	for i := 0; i < n; i++ {
		objs = append(objs, &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprint("app-", i)},
			Spec: esv1.ExternalSecretSpec{
				RefreshInterval: &esv1.Duration{Duration: time.Hour},
				SecretStoreRef:  esv1.SecretStoreRef{Name: "backend", Kind: esv1.SecretStoreKind},
				Target:          esv1.ExternalSecretTarget{Name: fmt.Sprint("app-", i), CreationPolicy: esv1.CreatePolicyOwner},
				Data:            []esv1.ExternalSecretData{{SecretKey: "password", RemoteRef: esv1.ExternalSecretDataRemoteRef{Key: fmt.Sprint("db-", i)}}},
			}})
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		env.WaitSecret(t, ns, fmt.Sprint("app-", i), testenv.HasData(map[string]string{"password": "v1"}))
		waitReadyStatus(t, ns, fmt.Sprint("app-", i), metav1.ConditionTrue)
	}

	// The backend fails (503s, then refused connections); forced syncs find
	// it failing.
	be.set("v1", true)
	callsBefore := be.calls.Load()
	outage := time.Now()
	for i := 0; i < n; i++ {
		env.ForceSync(t, ns, fmt.Sprint("app-", i))
	}
	for i := 0; i < n; i++ {
		waitReadyStatus(t, ns, fmt.Sprint("app-", i), metav1.ConditionFalse)
	}
	waitObserving(phase)
	calls503 := be.calls.Load() - callsBefore
	be.down()
	waitObserving(phase)

	// It comes back with a rotated value: poll every 20 ms until every
	// Secret has it and every ExternalSecret is Ready.
	be.set("v2", false)
	be.up(t)
	back := time.Now()
	deadline := back.Add(probe + 2*time.Second)
	readyAt := map[int]time.Time{}
	for len(readyAt) < n && time.Now().Before(deadline.Add(30*time.Second)) {
		now := time.Now()
		for i := 0; i < n; i++ {
			if _, done := readyAt[i]; done {
				continue
			}
			var s corev1.Secret
			var got esv1.ExternalSecret
			if env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprint("app-", i)}, &s) != nil || string(s.Data["password"]) != "v2" ||
				env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprint("app-", i)}, &got) != nil {
				continue
			}
			if c := testenv.ReadyCondition(&got); c != nil && c.Status == metav1.ConditionTrue {
				readyAt[i] = now
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(readyAt) < n {
		t.Fatalf("%d of %d ExternalSecrets recovered 30s past the deadline", len(readyAt), n)
	}
	var last time.Time
	for _, at := range readyAt {
		if at.After(last) {
			last = at
		}
	}
	ok := be.firstAnswer()
	t.Logf("outage %s (503s %s: %d backend calls for %d ExternalSecrets, probe interval %s; then refused %s); backend back → first call answered %s → all %d Secrets rotated and Ready %s",
		back.Sub(outage).Round(time.Millisecond), phase, calls503, n, probe, phase,
		ok.Sub(back).Round(time.Millisecond), n, last.Sub(back).Round(time.Millisecond))
	t.Logf("first answered call → last ExternalSecret Ready: %s (20 ms poll)", last.Sub(ok).Round(time.Millisecond))
	if !strings.Contains(logs.String(), "store answers again; re-syncing the objects waiting for it") {
		t.Errorf("the fetch layer did not tell the waiting ExternalSecrets that the store answers again")
	}
	if last.After(deadline) {
		t.Errorf("last ExternalSecret Ready %s after the backend came back, want within the probe interval %s + 2s", last.Sub(back), probe)
	}
	if d := last.Sub(ok); d > 2*time.Second {
		t.Errorf("last ExternalSecret Ready %s after the store's first answer, want within 2s", d)
	}
	// One call per probe interval (less a fifth of jitter), plus the calls
	// of the forced syncs that found the store failing.
	if max := int64(phase/(probe*4/5)) + n + 1; calls503 > max {
		t.Errorf("%d backend calls in %s of 503s, want at most %d", calls503, phase, max)
	}
}

// A store whose credentials are refused backs off; once the credential
// Secret is fixed, the next probe builds the client again (reading the
// Secret anew), and the ExternalSecret waiting for it is re-synced at once,
// not after the client's 15-minute lifetime.
func TestAFixedCredentialResyncsTheWaitingObjectsAtOnce(t *testing.T) {
	const (
		probe = 2 * time.Second
		class = "recovery-test"
	)
	ns := env.Namespace(t)
	be := startSwitchableBackend(t, "v1")
	be.token = "right"
	logs := &testenv.LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operator logs:\n%s", logs.String())
		}
	})
	testenv.StartOperator(t, env.Cluster.Config, operator.Options{
		Log: testenv.DebugLogger(logs), StartupSpread: time.Second, SkipControllerNameValidation: true,
		ControllerClass: class, Namespace: ns, DisableSecretSync: true, DisableClusterExternalSecrets: true,
		StoreProbeInterval: probe,
	})
	ctx := context.Background()
	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "creds", Labels: map[string]string{"external-secrets.io/type": "webhook"}},
		StringData: map[string]string{"token": "wrong"}}
	store := &esv1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "backend"},
		Spec: esv1.SecretStoreSpec{Controller: class, Provider: &esv1.SecretStoreProvider{Webhook: &esv1.WebhookProvider{
			URL:     "http://" + be.addr + "/{{ .remoteRef.key }}",
			Headers: map[string]string{"X-Token": "{{ .creds.token }}"},
			Secrets: []esv1.WebhookSecret{{Name: "creds", SecretRef: esv1.SecretKeySelector{Name: "creds"}}},
			Timeout: &esv1.Duration{Duration: 2 * time.Second},
			Result:  esv1.WebhookResult{JSONPath: "$.value"},
		}}}}
	es := &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: esv1.ExternalSecretSpec{
			RefreshInterval: &esv1.Duration{Duration: time.Hour},
			SecretStoreRef:  esv1.SecretStoreRef{Name: "backend", Kind: esv1.SecretStoreKind},
			Target:          esv1.ExternalSecretTarget{Name: "app", CreationPolicy: esv1.CreatePolicyOwner},
			Data:            []esv1.ExternalSecretData{{SecretKey: "password", RemoteRef: esv1.ExternalSecretDataRemoteRef{Key: "db"}}},
		}}
	for _, o := range []client.Object{creds, store, es} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitReadyStatus(t, ns, "app", metav1.ConditionFalse)

	patch := client.MergeFrom(creds.DeepCopy())
	creds.StringData = map[string]string{"token": "right"}
	if err := env.Client.Patch(ctx, creds, patch); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	deadline := fixed.Add(probe + 2*time.Second)
	testenv.Eventually(t, "the Secret written with the fixed credential", func(ctx context.Context) (bool, string) {
		var s corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &s); err != nil {
			return false, err.Error()
		}
		return string(s.Data["password"]) == "v1", "no value yet"
	})
	waitReadyStatus(t, ns, "app", metav1.ConditionTrue)
	took := time.Since(fixed)
	t.Logf("credential Secret fixed → Secret written and Ready: %s (probe interval %s)", took.Round(time.Millisecond), probe)
	if time.Now().After(deadline) {
		t.Errorf("Ready %s after the credential was fixed, want within the probe interval %s + 2s", took, probe)
	}
	// Which path wins is a race: the probe (the fetch layer then tells the
	// waiting object, logged below) or the object's own retry woken by the
	// changed credential, which the full suite has seen win in 259 ms. Both
	// meet the bound above; the notification itself is pinned by the fetch
	// layer's TestWaitersAreToldWhenTheFirstProbeSucceeds and
	// TestAFixedCredentialIsReadOnTheProbe.
	if strings.Contains(logs.String(), "store answers again; re-syncing the objects waiting for it") {
		t.Logf("re-synced by the fetch layer's notification")
	} else {
		t.Logf("re-synced by the ExternalSecret's own retry before the probe")
	}
}

// waitReadyStatus waits for an ExternalSecret's Ready condition to have
// status, whatever its reason.
func waitReadyStatus(t *testing.T, ns, name string, status metav1.ConditionStatus) {
	t.Helper()
	testenv.Eventually(t, "ExternalSecret "+ns+"/"+name+" Ready="+string(status), func(ctx context.Context) (bool, string) {
		var es esv1.ExternalSecret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &es); err != nil {
			return false, err.Error()
		}
		c := testenv.ReadyCondition(&es)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Status == status, "Ready=" + string(c.Status) + " reason=" + c.Reason + ": " + c.Message
	})
}

// waitObserving lets an outage phase last d while the operator runs; it is
// the length of the fault, not a synchronisation.
func waitObserving(d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	<-timer.C
}
