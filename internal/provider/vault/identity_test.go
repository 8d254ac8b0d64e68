package vault

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/kube"
	"github.com/keyferry/keyferry/internal/provider"
)

// tenantVault is a TLS server a tenant points vault.server at: it answers
// nothing useful and counts every request it receives.
type tenantVault struct {
	*httptest.Server
	requests atomic.Int64
}

func newTenantVault(t *testing.T) *tenantVault {
	v := &tenantVault{}
	v.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.requests.Add(1)
		http.Error(w, "recorded", http.StatusForbidden)
	}))
	t.Cleanup(v.Close)
	return v
}

// caBundle is the PEM certificate of the server, for vault.caBundle.
func (v *tenantVault) caBundle() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: v.Certificate().Raw})
}

// operatorToken writes a real token of the ServiceAccount "app" (bound to
// the role "app" by kubernetesAuth) where the provider reads the operator's
// own token, and returns the file.
func operatorToken(t *testing.T, e *env) string {
	t.Helper()
	tok, _, err := tokenRequester{cluster.cs}.ServiceAccountToken(context.Background(), e.ns, "app", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.secrets = append(e.secrets, tok)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// layer is the fetch layer the operator uses, with this package's provider
// reading the operator's token from tokenFile.
func layer(t *testing.T, tokenFile string, pol provider.Policy) *fetch.Layer {
	t.Helper()
	reg := provider.NewRegistry()
	reg.Register("vault", NewWithOptions(Options{TokenFile: tokenFile}))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return fetch.New(ctx, fetch.Options{
		Registry: reg, Kube: cluster.kube, Tokens: &kube.TokenRequester{Client: cluster.cs},
		Policy: pol, Log: logr.Discard(),
	})
}

func clusterStore(v *esv1.VaultProvider) provider.Store {
	return provider.Store{Kind: esv1.ClusterSecretStoreKind, Name: "vault", Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Vault: v}}}
}

// Issue 9, item 1: auth.kubernetes without serviceAccountRef or secretRef
// logs in with keyferry's own ServiceAccount token. A SecretStore, which a
// tenant writes, is refused before the token is read or a request is sent;
// a ClusterSecretStore logs in with it.
func TestKubernetesAuthWithoutRefsSendsTheOperatorsTokenOnlyForClusterStores(t *testing.T) {
	e := newEnv(t)
	val := e.canary()
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": val})
	kubernetesAuth(t, e)
	tokenFile := operatorToken(t, e)
	auth := &esv1.VaultAuth{Kubernetes: &esv1.VaultKubernetesAuth{Path: "kubernetes", Role: "app"}}
	ctx := context.Background()

	t.Run("a SecretStore pointing at the tenant's server sends nothing", func(t *testing.T) {
		tenant := newTenantVault(t)
		l := layer(t, tokenFile, provider.Policy{})
		st := e.store(&esv1.VaultProvider{Server: tenant.URL, Path: ptr("secret"), Auth: auth, CABundle: tenant.caBundle()})
		err := l.Validate(ctx, fetch.Request{Store: st, Namespace: e.ns})
		if !errors.Is(err, provider.ErrOperatorIdentity) {
			t.Fatalf("Validate: %v, want ErrOperatorIdentity", err)
		}
		_, errs := l.Get(ctx, fetch.Request{Store: st, Namespace: e.ns, Subscriber: "ExternalSecret/" + e.ns + "/app"}, []provider.Ref{{Key: "app"}})
		if err := errs[provider.Ref{Key: "app"}]; !errors.Is(err, provider.ErrOperatorIdentity) {
			t.Fatalf("Get: %v, want ErrOperatorIdentity", err)
		}
		if n := tenant.requests.Load(); n != 0 {
			t.Fatalf("the tenant's server received %d requests", n)
		}
		for _, want := range []string{"spec.provider.vault.auth.kubernetes", "--allow-ambient-identity=" + e.ns + "/kubernetes"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q does not contain %q", err, want)
			}
		}
		e.noLeak(err)
	})

	t.Run("a ClusterSecretStore logs in with it", func(t *testing.T) {
		l := layer(t, tokenFile, provider.Policy{})
		st := clusterStore(e.spec(auth))
		vals, errs := l.Get(ctx, fetch.Request{Store: st, Namespace: e.ns, Subscriber: "ExternalSecret/" + e.ns + "/app"}, []provider.Ref{{Key: "app"}})
		if err := errs[provider.Ref{Key: "app"}]; err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got := string(vals[provider.Ref{Key: "app"}].Fields["v"]); got != val {
			t.Errorf("got %q", got)
		}
	})

	t.Run("a SecretStore in a namespace the operator allows logs in with it", func(t *testing.T) {
		l := layer(t, tokenFile, provider.Policy{AmbientIdentities: []provider.IdentityGrant{{Identity: provider.IdentityKubernetes, Namespace: e.ns}}})
		vals, errs := l.Get(ctx, fetch.Request{Store: e.store(e.spec(auth)), Namespace: e.ns, Subscriber: "ExternalSecret/" + e.ns + "/app"}, []provider.Ref{{Key: "app"}})
		if err := errs[provider.Ref{Key: "app"}]; err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got := string(vals[provider.Ref{Key: "app"}].Fields["v"]); got != val {
			t.Errorf("got %q", got)
		}
	})
}

// Issue 9, item 3: a SecretStore's serviceAccountRef token goes to a server
// outside the cluster, so it must not carry the API server's audience (with
// which the server could act as the ServiceAccount in this cluster); with
// the audience the Vault role expects it logs in.
func TestNamespacedStoreTokensNeverCarryTheAPIServersAudience(t *testing.T) {
	e := newEnv(t)
	val := e.canary()
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": val})
	kubernetesAuth(t, e)
	// The role checks the audience, and reviews the token with it.
	e.vault.Write(t, "auth/kubernetes/role/app-vault-audience", map[string]any{
		"bound_service_account_names":      []string{"app"},
		"bound_service_account_namespaces": []string{e.ns},
		"token_policies":                   []string{"reader"},
		"audience":                         "vault",
	})
	ctx := context.Background()
	tokens := &kube.TokenRequester{Client: cluster.cs}
	api, err := tokens.APIAudiences(ctx, e.ns, "app")
	if err != nil {
		t.Fatal(err)
	}
	get := func(t *testing.T, role string, audiences ...string) (provider.Value, error) {
		l := layer(t, "", provider.Policy{})
		st := e.store(e.spec(&esv1.VaultAuth{Kubernetes: &esv1.VaultKubernetesAuth{Path: "kubernetes", Role: role,
			ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "app", Audiences: audiences}}}))
		vals, errs := l.Get(ctx, fetch.Request{Store: st, Namespace: e.ns, Subscriber: "ExternalSecret/" + e.ns + "/app"}, []provider.Ref{{Key: "app"}})
		return vals[provider.Ref{Key: "app"}], errs[provider.Ref{Key: "app"}]
	}
	for name, aud := range map[string][]string{"no audience": nil, "the API server's audience": api} {
		t.Run(name, func(t *testing.T) {
			_, err := get(t, "app", aud...)
			if !errors.Is(err, provider.ErrOperatorIdentity) || !strings.Contains(err.Error(), "service account "+e.ns+"/app") {
				t.Fatalf("err %v, want a refusal naming the service account", err)
			}
			e.noLeak(err)
		})
	}
	t.Run("the audience of the Vault role", func(t *testing.T) {
		v, err := get(t, "app-vault-audience", "vault")
		if err != nil {
			t.Fatal(err)
		}
		if got := string(v.Fields["v"]); got != val {
			t.Errorf("got %q", got)
		}
	})
}

// Issue 9, item 11: credentials go over plain http:// only to loopback
// addresses unless the operator allows it.
func TestCredentialsOverPlainHTTPNeedTheOperatorsOptIn(t *testing.T) {
	e := newEnv(t)
	e.secret("t", map[string]string{"token": "not-a-real-token"})
	auth := &esv1.VaultAuth{TokenSecretRef: &esv1.SecretKeySelector{Name: "t", Key: "token"}}
	ctx := context.Background()
	var requests atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "recorded", http.StatusForbidden)
	}))
	t.Cleanup(plain.Close)
	// A name that is not a loopback address, sent to the test server as DNS
	// would.
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, plain.Listener.Addr().String())
	}
	spec := &esv1.VaultProvider{Server: "http://vault.vault.svc:8200", Path: ptr("secret"), Auth: auth}
	p := NewWithOptions(Options{DialContext: dial})

	opts := e.options(e.store(spec))
	if _, err := p.NewClient(ctx, opts); !errors.Is(err, provider.ErrInvalidConfig) || !strings.Contains(err.Error(), "--allow-insecure-http") {
		t.Fatalf("NewClient over plain http: %v, want a refusal naming --allow-insecure-http", err)
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("the server received %d requests", n)
	}

	opts.Policy.AllowInsecureHTTP = true
	c, err := p.NewClient(ctx, opts)
	if err != nil {
		t.Fatalf("NewClient with --allow-insecure-http: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(ctx) })
	_, _ = c.GetSecret(ctx, provider.Ref{Key: "app"})
	if requests.Load() == 0 {
		t.Fatal("with the opt-in, no request reached the server")
	}

	// The dev server on http://127.0.0.1 needs no opt-in.
	if !strings.HasPrefix(e.vault.Addr, "http://127.0.0.1") {
		t.Fatalf("the dev server listens on %s, not plain http on loopback", e.vault.Addr)
	}
	lc, err := New().NewClient(ctx, e.options(e.store(e.spec(e.rootAuth()))))
	if err != nil {
		t.Fatalf("NewClient on loopback: %v", err)
	}
	_ = lc.Close(ctx)
}
