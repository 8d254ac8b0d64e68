package azurekv

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/provider"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

const acrRegistry = "example.azurecr.io"

// acrProvider is the provider pointed at srv through its Router: Entra ID,
// the managed identity endpoint and every *.azurecr.io registry are the
// test server's.
func acrProvider(srv *kvserver.Server, tr policy.Transporter) *Provider {
	if tr == nil {
		tr = srv.Router()
	}
	return NewWithOptions(Options{Transport: tr, AuthorityHost: srv.AuthorityHost(), LookupEnv: func(string) (string, bool) { return "", false }})
}

// acrStore is the store the engine makes of an ACRAccessToken (no vaultUrl).
func acrStore(ns string, kv *esv1.AzureKVProvider) provider.Store {
	return provider.Store{Kind: "ACRAccessToken", Name: "acr", Namespace: ns,
		Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{AzureKV: kv}}}
}

func acrRequest(registry, scope string) provider.GenerateRequest {
	return provider.GenerateRequest{Kind: "ACRAccessToken", Spec: &genv1alpha1.ACRAccessTokenSpec{Registry: registry, Scope: scope}}
}

// spACR sets up a service principal with a role on the registry and its
// credential Secret in ns, and returns the store.
func spACR(t *testing.T, srv *kvserver.Server, ns string, role kvserver.RegistryRole) provider.Store {
	t.Helper()
	srv.AddRegistry(acrRegistry)
	srv.AddApp(kvserver.App{ClientID: "acr-app", ClientSecret: "sp-" + canary})
	if role != 0 {
		srv.GrantRegistry(acrRegistry, "acr-app", role)
	}
	createSecret(t, ns, "az-secret", map[string][]byte{"clientid": []byte("acr-app"), "clientsecret": []byte("sp-" + canary)})
	return acrStore(ns, &esv1.AzureKVProvider{
		AuthType: ptr(esv1.AzureServicePrincipal), TenantID: ptr(srv.TenantID()),
		AuthSecretRef: &esv1.AzureKVAuth{
			ClientID:     &esv1.SecretKeySelector{Name: "az-secret", Key: "clientid"},
			ClientSecret: &esv1.SecretKeySelector{Name: "az-secret", Key: "clientsecret"},
		},
	})
}

// wantToken checks ESO's two keys and returns what the token grants.
func wantToken(t *testing.T, srv *kvserver.Server, out map[string][]byte) kvserver.RegistryToken {
	t.Helper()
	if len(out) != 2 || string(out["username"]) != ACRUsername {
		t.Fatalf("keys %v, username %q; want username %s and password", slices.Sorted(func(yield func(string) bool) {
			for k := range out {
				if !yield(k) {
					return
				}
			}
		}), out["username"], ACRUsername)
	}
	rt, err := srv.VerifyRegistryToken(string(out["password"]))
	if err != nil {
		t.Fatalf("the password is not a token of the registry: %v", err)
	}
	if rt.Registry != acrRegistry {
		t.Fatalf("token for %q, want %s", rt.Registry, acrRegistry)
	}
	return rt
}

// noToken fails when err holds a token (a JWT) or a credential.
func noToken(t *testing.T, err error) {
	t.Helper()
	noCanary(t, err)
	if err != nil && strings.Contains(err.Error(), "eyJ") {
		t.Fatalf("an error holds a token: %v", err)
	}
}

func TestACRGenerateRefreshTokenWithServicePrincipal(t *testing.T) {
	srv := newServer(t)
	ns := newNamespace(t)
	store := spACR(t, srv, ns, kvserver.AcrPull)
	out, err := acrProvider(srv, nil).Generate(testContext(t), options(store, ns, nil), acrRequest(acrRegistry, ""))
	if err != nil {
		noToken(t, err)
		t.Fatalf("Generate: %v", err)
	}
	if rt := wantToken(t, srv, out); !rt.Refresh || rt.ClientID != "acr-app" {
		t.Fatalf("token %+v, want a refresh token of acr-app", rt)
	}
	if n, m := srv.RegistryRequests("/oauth2/exchange"), srv.RegistryRequests("/oauth2/token"); n != 1 || m != 0 {
		t.Fatalf("%d exchanges and %d token requests, want 1 and 0 without a scope", n, m)
	}
}

func TestACRGenerateAccessTokenOfAScope(t *testing.T) {
	srv := newServer(t)
	ns := newNamespace(t)
	store := spACR(t, srv, ns, kvserver.AcrPull)
	p := acrProvider(srv, nil)
	for _, tc := range []struct {
		name  string
		role  kvserver.RegistryRole
		scope string
		want  []string
	}{
		{"AcrPull gets pull of what ESO's example asks", kvserver.AcrPull, "repository:foo:pull,push", []string{"repository:foo:pull"}},
		{"AcrPush gets pull and push", kvserver.AcrPush, "repository:foo:pull,push", []string{"repository:foo:pull,push"}},
		{"several scopes", kvserver.AcrPush, "repository:a:pull repository:b/c:push", []string{"repository:a:pull", "repository:b/c:push"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.GrantRegistry(acrRegistry, "acr-app", tc.role)
			out, err := p.Generate(testContext(t), options(store, ns, nil), acrRequest(acrRegistry, tc.scope))
			if err != nil {
				noToken(t, err)
				t.Fatalf("Generate: %v", err)
			}
			rt := wantToken(t, srv, out)
			if rt.Refresh || !slices.Equal(rt.Access, tc.want) {
				t.Fatalf("token %+v, want an access token granting %v", rt, tc.want)
			}
		})
	}
}

func TestACRGenerateWithWorkloadIdentity(t *testing.T) {
	srv := newServer(t)
	ns := newNamespace(t)
	issuer := srv.TrustKubernetesIssuer(testContext(t), t, kubeConfig)
	srv.AddRegistry(acrRegistry)
	srv.AddApp(kvserver.App{ClientID: "wi-acr", Federated: []kvserver.FederatedCredential{{Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":pusher"}}})
	srv.GrantRegistry(acrRegistry, "wi-acr", kvserver.AcrPush)
	createServiceAccount(t, ns, "pusher", map[string]string{AnnotationClientID: "wi-acr", AnnotationTenantID: srv.TenantID()})
	store := acrStore(ns, &esv1.AzureKVProvider{AuthType: ptr(esv1.AzureWorkloadIdentity), ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "pusher"}})
	tokens := &tokenRequester{}
	out, err := acrProvider(srv, nil).Generate(testContext(t), options(store, ns, tokens), acrRequest(acrRegistry, "repository:app:push"))
	if err != nil {
		noToken(t, err)
		t.Fatalf("Generate: %v", err)
	}
	if rt := wantToken(t, srv, out); rt.ClientID != "wi-acr" || !slices.Equal(rt.Access, []string{"repository:app:push"}) {
		t.Fatalf("token %+v", rt)
	}
	if tokens.calls.Load() != 1 {
		t.Fatalf("%d ServiceAccount tokens requested, want 1", tokens.calls.Load())
	}
}

// Managed identity through the App Service style endpoint (process
// environment: not parallel).
func TestACRGenerateWithManagedIdentity(t *testing.T) {
	srv := newServer(t)
	t.Setenv("IDENTITY_ENDPOINT", srv.ManagedIdentityEndpoint())
	t.Setenv("IDENTITY_HEADER", srv.ManagedIdentityHeader())
	srv.AddRegistry(acrRegistry)
	srv.AddManagedIdentity(kvserver.ManagedIdentity{ClientID: "kubelet-mi"})
	srv.GrantRegistry(acrRegistry, "kubelet-mi", kvserver.AcrPull)
	store := acrStore("", &esv1.AzureKVProvider{AuthType: ptr(esv1.AzureManagedIdentity), IdentityID: ptr("kubelet-mi")})
	store.Kind, store.Namespace = esv1.ClusterSecretStoreKind, ""
	out, err := acrProvider(srv, nil).Generate(testContext(t), options(store, "default", nil), acrRequest(acrRegistry, ""))
	if err != nil {
		noToken(t, err)
		t.Fatalf("Generate: %v", err)
	}
	if rt := wantToken(t, srv, out); rt.ClientID != "kubelet-mi" || !rt.Refresh {
		t.Fatalf("token %+v", rt)
	}
}

func TestACRGenerateErrors(t *testing.T) {
	srv := newServer(t)
	ns := newNamespace(t)
	store := spACR(t, srv, ns, 0)
	p := acrProvider(srv, nil)
	gen := func(t *testing.T, store provider.Store, req provider.GenerateRequest) error {
		t.Helper()
		out, err := p.Generate(testContext(t), options(store, ns, nil), req)
		if out != nil {
			t.Fatal("values with an error")
		}
		noToken(t, err)
		t.Logf("expected error: %v", err)
		return err
	}
	t.Run("an identity without a role on the registry is unauthenticated", func(t *testing.T) {
		err := gen(t, store, acrRequest(acrRegistry, ""))
		if !errors.Is(err, provider.ErrUnauthenticated) || !strings.Contains(err.Error(), "UNAUTHORIZED") {
			t.Fatalf("err = %v, want ErrUnauthenticated with ACR's code", err)
		}
	})
	srv.GrantRegistry(acrRegistry, "acr-app", kvserver.AcrPull)
	t.Run("a wrong client secret is refused by Entra ID", func(t *testing.T) {
		createSecret(t, ns, "wrong", map[string][]byte{"clientid": []byte("acr-app"), "clientsecret": []byte("wrong-" + canary)})
		s := acrStore(ns, store.Spec.Provider.AzureKV.DeepCopy())
		s.Spec.Provider.AzureKV.AuthSecretRef.ClientSecret.Name = "wrong"
		if err := gen(t, s, acrRequest(acrRegistry, "")); !errors.Is(err, provider.ErrUnauthenticated) {
			t.Fatalf("err = %v, want ErrUnauthenticated", err)
		}
	})
	t.Run("a registry that does not exist", func(t *testing.T) {
		if err := gen(t, store, acrRequest("nope.azurecr.io", "")); !errors.Is(err, provider.ErrInvalidConfig) {
			t.Fatalf("err = %v, want ErrInvalidConfig", err)
		}
	})
	t.Run("a registry that is a URL", func(t *testing.T) {
		if err := gen(t, store, acrRequest("https://"+acrRegistry, "")); !errors.Is(err, provider.ErrInvalidConfig) {
			t.Fatalf("err = %v, want ErrInvalidConfig", err)
		}
	})
	t.Run("a malformed scope is the registry's 400", func(t *testing.T) {
		err := gen(t, store, acrRequest(acrRegistry, "repository-foo"))
		if err == nil || !strings.Contains(err.Error(), "400 BAD_REQUEST") {
			t.Fatalf("err = %v, want the registry's 400", err)
		}
	})
	t.Run("throttled with Retry-After", func(t *testing.T) {
		srv.ThrottleRegistry(7*time.Second, 1)
		err := gen(t, store, acrRequest(acrRegistry, ""))
		var te *provider.ThrottledError
		if !errors.As(err, &te) || te.RetryAfter != 7*time.Second {
			t.Fatalf("err = %v, want a ThrottledError after 7s", err)
		}
	})
	t.Run("another generator's request", func(t *testing.T) {
		if err := gen(t, store, provider.GenerateRequest{Kind: "GCRAccessToken", Spec: "x"}); !errors.Is(err, provider.ErrNotSupported) {
			t.Fatalf("err = %v, want ErrNotSupported", err)
		}
	})
	t.Run("USGovernmentCloud asks for its Resource Manager audience", func(t *testing.T) {
		s := acrStore(ns, store.Spec.Provider.AzureKV.DeepCopy())
		s.Spec.Provider.AzureKV.EnvironmentType = esv1.AzureEnvironmentUSGovernmentCloud
		out, err := p.Generate(testContext(t), options(s, ns, nil), acrRequest(acrRegistry, ""))
		if err != nil {
			noToken(t, err)
			t.Fatal(err)
		}
		wantToken(t, srv, out)
	})
}

// registryAnswering routes *.azurecr.io to a registry that answers with h
// and everything else (Entra ID) to srv.
type registryAnswering struct {
	srv *kvserver.Router
	reg *httptest.Server
}

func (r registryAnswering) Do(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.URL.Hostname(), ".azurecr.io") {
		return r.srv.Do(req)
	}
	req = req.Clone(req.Context())
	req.URL.Host = strings.TrimPrefix(r.reg.URL, "https://")
	return r.reg.Client().Do(req)
}

// TestACRGenerateBoundsAndRedactsAnswers: what a registry answers is read
// up to a bound, must hold the token, and never brings a token into an
// error, even when the registry echoes the one it was sent.
func TestACRGenerateBoundsAndRedactsAnswers(t *testing.T) {
	srv := newServer(t)
	ns := newNamespace(t)
	store := spACR(t, srv, ns, kvserver.AcrPull)
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter, form url.Values)
		want   error
	}{
		{"an answer larger than the bound", func(w http.ResponseWriter, _ url.Values) {
			_, _ = w.Write([]byte(`{"refresh_token":"` + strings.Repeat("a", maxACRResponse) + `"}`))
		}, provider.ErrBadResponse},
		{"an answer that is not JSON", func(w http.ResponseWriter, _ url.Values) { _, _ = w.Write([]byte("<html>")) }, provider.ErrBadResponse},
		{"an answer without the token", func(w http.ResponseWriter, _ url.Values) { _, _ = w.Write([]byte(`{"access_token":"x"}`)) }, provider.ErrBadResponse},
		{"a token that is not a string", func(w http.ResponseWriter, _ url.Values) { _, _ = w.Write([]byte(`{"refresh_token":7}`)) }, provider.ErrBadResponse},
		{"an error echoing the Entra ID token", func(w http.ResponseWriter, form url.Values) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"bad token ` + form.Get("access_token") + `"}]}`))
		}, provider.ErrUnauthenticated},
		{"a 503", func(w http.ResponseWriter, _ url.Values) { w.WriteHeader(http.StatusServiceUnavailable) }, provider.ErrUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				tc.answer(w, r.PostForm)
			}))
			defer reg.Close()
			p := acrProvider(srv, registryAnswering{srv: srv.Router(), reg: reg})
			_, err := p.Generate(testContext(t), options(store, ns, nil), acrRequest(acrRegistry, ""))
			noToken(t, err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			t.Logf("expected error: %v", err)
		})
	}
	t.Run("a cancelled request", func(t *testing.T) {
		release := make(chan struct{})
		reg := httptest.NewTLSServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer reg.Close()
		defer close(release)
		ctx, cancel := context.WithTimeout(testContext(t), 2*time.Second)
		defer cancel()
		_, err := acrProvider(srv, registryAnswering{srv: srv.Router(), reg: reg}).Generate(ctx, options(store, ns, nil), acrRequest(acrRegistry, ""))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's deadline", err)
		}
	})
}

func TestParseRegistry(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"example.azurecr.io", "example.azurecr.io"},
		{" Example.AzureCR.io ", "example.azurecr.io"},
		{"example.azurecr.io.", "example.azurecr.io"},
		{"registry.local:5000", "registry.local:5000"},
		{"localhost", "localhost"},
		{"", ""},
		{"https://example.azurecr.io", ""},
		{"example.azurecr.io/foo", ""},
		{"example.azurecr.io:0", ""},
		{"example.azurecr.io:65536", ""},
		{"example.azurecr.io:05000", ""},
		{"exa mple.azurecr.io", ""},
		{"-example.azurecr.io", ""},
		{"example..azurecr.io", ""},
		{"user@example.azurecr.io", ""},
		{"example.azurecr.io?x=1", ""},
		{"[::1]:443", ""},
		{strings.Repeat("a", 64) + ".azurecr.io", ""},
	} {
		got, err := ParseRegistry(tc.in)
		if tc.want == "" {
			if !errors.Is(err, provider.ErrInvalidConfig) || !strings.Contains(err.Error(), "spec.registry") {
				t.Errorf("ParseRegistry(%q) = %q, %v; want an invalid spec.registry", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRegistry(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
