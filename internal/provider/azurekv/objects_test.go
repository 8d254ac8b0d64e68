package azurekv

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

// readerClient returns a client of a service principal allowed access on
// srv.
func readerClient(t *testing.T, srv *kvserver.Server, access kvserver.Access) *Client {
	t.Helper()
	ns := newNamespace(t)
	createSecret(t, ns, "azure-credentials", map[string][]byte{
		"client-id": []byte("reader"), "client-secret": []byte("cs-" + canary),
	})
	srv.AddApp(kvserver.App{ClientID: "reader", ClientSecret: "cs-" + canary, Access: access})
	return mustClient(t, providerFor(srv, nil), options(spStore(srv, ns), ns, nil))
}

func TestCertificatesAreDERAndKeysAreJWK(t *testing.T) {
	srv := newServer(t)
	c := readerClient(t, srv, kvserver.ReadAll)
	oldCert, oldKey := selfSigned(t, "tls-old")
	newCert, newKey := selfSigned(t, "tls-new")
	v1 := srv.SetCertificate(t, "tls", oldCert, oldKey)
	v2 := srv.SetCertificate(t, "tls", newCert, newKey)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kv := srv.SetKey(t, "signing", &ecKey.PublicKey, kvserver.WithTags(map[string]string{"use": "jwt"}))

	if got := getValue(t, c, "cert/tls", ""); !bytes.Equal(got.Data, newCert.Raw) || got.Version != v2 {
		t.Fatalf("cert/tls: got version %q, want the DER of version %q", got.Version, v2)
	}
	if got := getValue(t, c, "cert/tls", v1); !bytes.Equal(got.Data, oldCert.Raw) || got.Version != v1 {
		t.Fatalf("cert/tls@%s: got version %q and other bytes", v1, got.Version)
	}

	// The key backing the certificate: its public JWK.
	var rsaJWK struct {
		KID string `json:"kid"`
		Kty string `json:"kty"`
		N   string `json:"n"`
		E   string `json:"e"`
	}
	got := getValue(t, c, "key/tls", "")
	if err := json.Unmarshal(got.Data, &rsaJWK); err != nil {
		t.Fatalf("key/tls is not JSON: %v", err)
	}
	n, err := base64.RawURLEncoding.DecodeString(rsaJWK.N)
	if err != nil || rsaJWK.Kty != "RSA" || !bytes.Equal(n, newKey.N.Bytes()) || rsaJWK.E != "AQAB" || !strings.HasSuffix(rsaJWK.KID, "/keys/tls/"+v2) {
		t.Fatalf("key/tls: got JWK %s, want the RSA public key of version %s", got.Data, v2)
	}
	var ecJWK map[string]any
	got = getValue(t, c, "key/signing", kv)
	if err := json.Unmarshal(got.Data, &ecJWK); err != nil || ecJWK["kty"] != "EC" || ecJWK["crv"] != "P-256" || got.Version != kv {
		t.Fatalf("key/signing: got %s (version %q)", got.Data, got.Version)
	}
	if _, ok := ecJWK["d"]; ok {
		t.Fatal("a key's JWK must not hold a private part")
	}

	// The secret backing the certificate holds its private key, as in Key Vault.
	if got := getValue(t, c, "secret/tls", ""); !bytes.Contains(got.Data, []byte("PRIVATE KEY")) {
		t.Fatal("secret/tls should be the certificate's PEM with its private key")
	}
}

func TestFindByTagsAndNameAcrossPages(t *testing.T) {
	srv := newServer(t) // 3 items per page
	c := readerClient(t, srv, kvserver.ReadAll)
	billing := map[string]string{"app": "billing"}
	srv.SetSecret("billing-db-password", "a-"+canary, kvserver.WithTags(map[string]string{"app": "billing", "tier": "db"}))
	srv.SetSecret("billing-api-key", "b-"+canary, kvserver.WithTags(billing))
	srv.SetSecret("billing-disabled", "c-"+canary, kvserver.WithTags(billing), kvserver.Disabled())
	srv.SetSecret("billing-untagged", "d-"+canary)
	srv.SetSecret("shop-api-key", "e-"+canary, kvserver.WithTags(map[string]string{"app": "shop"}))
	for _, n := range []string{"misc-1", "misc-2", "misc-3", "misc-4", "misc-5"} {
		srv.SetSecret(n, n+canary)
	}
	ctx := testContext(t)
	cases := []struct {
		name string
		find provider.Find
		want []string
	}{
		{"tags", provider.Find{Tags: billing}, []string{"billing-api-key", "billing-db-password"}},
		{"two tags", provider.Find{Tags: map[string]string{"app": "billing", "tier": "db"}}, []string{"billing-db-password"}},
		{"name", provider.Find{Name: "^billing-"}, []string{"billing-api-key", "billing-db-password", "billing-untagged"}},
		{"name and tags", provider.Find{Name: "api-key$", Tags: billing}, []string{"billing-api-key"}},
		{"path is a name prefix", provider.Find{Path: "misc-"}, []string{"misc-1", "misc-2", "misc-3", "misc-4", "misc-5"}},
		{"nothing", provider.Find{Name: "^nope$"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.VaultRequests("/secrets")
			got, err := fetch.FindIn(ctx, c, tc.find)
			if err != nil {
				noCanary(t, err)
				t.Fatalf("Find: %v", err)
			}
			if names := slices.Sorted(maps.Keys(got)); !slices.Equal(names, tc.want) {
				t.Fatalf("Find(%+v) = %v, want %v", tc.find, names, tc.want)
			}
			for name, v := range got {
				if !strings.HasSuffix(string(v), canary) {
					t.Fatalf("Find returned a wrong value for %s", name)
				}
			}
			// 10 secrets, 3 a page: the listing must follow nextLink.
			if pages := srv.VaultRequests("/secrets") - before; pages < 4 {
				t.Fatalf("listing took %d requests, want 4 pages", pages)
			}
		})
	}

	_, err := fetch.FindIn(ctx, c, provider.Find{Name: "("})
	wantErr(t, err, provider.ErrInvalidConfig)
}

func TestVersionsNewestFirst(t *testing.T) {
	srv := newServer(t)
	c := readerClient(t, srv, kvserver.ReadAll)
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	// Seeded out of order; Key Vault does not list versions newest first.
	v3 := srv.SetSecret("rotating", "three-"+canary, kvserver.CreatedAt(base.Add(3*time.Hour)))
	v1 := srv.SetSecret("rotating", "one-"+canary, kvserver.CreatedAt(base.Add(1*time.Hour)))
	v4 := srv.SetSecret("rotating", "four-"+canary, kvserver.CreatedAt(base.Add(4*time.Hour)), kvserver.Disabled())
	v2 := srv.SetSecret("rotating", "two-"+canary, kvserver.CreatedAt(base.Add(2*time.Hour)))
	for i := range 4 { // more versions than a page
		srv.SetSecret("rotating", "old-"+canary, kvserver.CreatedAt(base.Add(-time.Duration(i+1)*time.Hour)))
	}
	_ = v4

	ctx := testContext(t)
	got, err := c.Versions(ctx, "rotating", 2)
	if err != nil {
		t.Fatalf("Versions: %v", err)
	}
	if len(got) != 2 || got[0].Version != v3 || got[1].Version != v2 || string(got[0].Data) != "three-"+canary || string(got[1].Data) != "two-"+canary {
		t.Fatalf("Versions(rotating, 2) = %v, want [%s %s] (enabled, newest first)", versionsOf(got), v3, v2)
	}
	got, err = c.Versions(ctx, "secret/rotating", 20)
	if err != nil {
		t.Fatalf("Versions: %v", err)
	}
	if len(got) != 7 || got[2].Version != v1 {
		t.Fatalf("Versions(rotating, 20) = %v, want the 7 enabled versions, %s third", versionsOf(got), v1)
	}

	certOld, keyOld := selfSigned(t, "old")
	certNew, keyNew := selfSigned(t, "new")
	srv.SetCertificate(t, "tls", certOld, keyOld)
	cv := srv.SetCertificate(t, "tls", certNew, keyNew)
	got, err = c.Versions(ctx, "cert/tls", 1)
	if err != nil || len(got) != 1 || got[0].Version != cv || !bytes.Equal(got[0].Data, certNew.Raw) {
		t.Fatalf("Versions(cert/tls, 1) = %v, %v; want [%s]", versionsOf(got), err, cv)
	}
	if got, err = c.Versions(ctx, "key/tls", 5); err != nil || len(got) != 2 {
		t.Fatalf("Versions(key/tls, 5) = %v, %v; want 2 versions", versionsOf(got), err)
	}

	_, err = c.Versions(ctx, "missing", 2)
	wantErr(t, err, provider.ErrNotFound)
}

func versionsOf(vs []provider.Value) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Version
	}
	return out
}

func TestErrorsMapToSentinels(t *testing.T) {
	srv := newServer(t)
	c := readerClient(t, srv, kvserver.ReadAll)
	version := srv.SetSecret("present", "p-"+canary)
	disabled := srv.SetSecret("present", "d-"+canary)
	srv.SetSecretEnabled("present", disabled, false)
	ctx := testContext(t)

	cases := []struct {
		name    string
		ref     provider.Ref
		want    error
		message string
	}{
		{"missing secret", provider.Ref{Key: "absent"}, provider.ErrNotFound, "SecretNotFound"},
		{"missing version", provider.Ref{Key: "present", Version: "0123456789abcdef0123456789abcdef"}, provider.ErrNotFound, "SecretNotFound"},
		{"missing certificate", provider.Ref{Key: "cert/absent"}, provider.ErrNotFound, "CertificateNotFound"},
		{"missing key", provider.Ref{Key: "key/absent"}, provider.ErrNotFound, "KeyNotFound"},
		{"disabled version", provider.Ref{Key: "present", Version: disabled}, provider.ErrForbidden, "SecretDisabled"},
		{"unknown object type", provider.Ref{Key: "blob/present"}, provider.ErrNotSupported, "blob"},
		{"no name", provider.Ref{Key: "secret/"}, provider.ErrInvalidConfig, "names no object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.GetSecret(ctx, tc.ref)
			wantErr(t, err, tc.want)
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("error %q does not mention %q", err, tc.message)
			}
		})
	}
	if got := getValue(t, c, "present", version); string(got.Data) != "p-"+canary {
		t.Fatal("the enabled version must still be readable")
	}

	t.Run("invalid name is not a missing secret", func(t *testing.T) {
		_, err := c.GetSecret(ctx, provider.Ref{Key: "not_a_valid_name"})
		if err == nil || errors.Is(err, provider.ErrNotFound) {
			t.Fatalf("got %v, want an error that does not claim the secret is missing", err)
		}
		noCanary(t, err)
	})
	t.Run("principal without access", func(t *testing.T) {
		srv.SetAccess("reader", kvserver.NoAccess)
		defer srv.SetAccess("reader", kvserver.ReadAll)
		_, err := c.GetSecret(ctx, provider.Ref{Key: "present"})
		wantErr(t, err, provider.ErrForbidden)
		if !strings.Contains(err.Error(), "appid=reader") {
			t.Fatalf("error %q should name the caller Key Vault refused", err)
		}
		_, err = fetch.FindIn(ctx, c, provider.Find{})
		wantErr(t, err, provider.ErrForbidden)
	})
	t.Run("get without list permission", func(t *testing.T) {
		srv.SetAccess("reader", kvserver.SecretsGet)
		defer srv.SetAccess("reader", kvserver.ReadAll)
		getValue(t, c, "present", version)
		_, err := fetch.FindIn(ctx, c, provider.Find{})
		wantErr(t, err, provider.ErrForbidden)
	})
}

func TestThrottlingIsSurfacedNotRetried(t *testing.T) {
	srv := newServer(t)
	c := readerClient(t, srv, kvserver.ReadAll)
	srv.SetSecret("warm", "w-"+canary)
	srv.SetSecret("hot", "h-"+canary)
	ctx := testContext(t)
	getValue(t, c, "warm", "") // authenticates: the challenge is behind us

	srv.Throttle("/secrets/hot", 7*time.Second, 1)
	_, err := c.GetSecret(ctx, provider.Ref{Key: "hot"})
	var te *provider.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want a *provider.ThrottledError", err)
	}
	noCanary(t, err)
	if te.RetryAfter != 7*time.Second {
		t.Fatalf("RetryAfter = %s, want 7s from the Retry-After header", te.RetryAfter)
	}
	if n := srv.VaultRequests("/secrets/hot"); n != 1 {
		t.Fatalf("the throttled vault got %d requests, want 1 (no SDK retries on 429)", n)
	}
	if got := getValue(t, c, "hot", ""); string(got.Data) != "h-"+canary {
		t.Fatal("wrong value once the throttle is over")
	}

	srv.Throttle("/secrets", 30*time.Second, 1)
	before := srv.VaultRequests("/secrets")
	_, err = fetch.FindIn(ctx, c, provider.Find{})
	if !errors.As(err, &te) || te.RetryAfter != 30*time.Second {
		t.Fatalf("Find: got %v, want a ThrottledError with RetryAfter 30s", err)
	}
	if n := srv.VaultRequests("/secrets") - before; n != 1 {
		t.Fatalf("the throttled listing got %d requests, want 1", n)
	}
}

func TestRejectedTokenIsUnauthenticated(t *testing.T) {
	srv := newServer(t)
	c := readerClient(t, srv, kvserver.ReadAll)
	srv.SetSecret("db-password", "pw-"+canary)
	getValue(t, c, "db-password", "")

	// Key Vault stops accepting the token the client holds (401 after
	// authentication).
	srv.RotateSigningKey(t)
	_, err := c.GetSecret(testContext(t), provider.Ref{Key: "db-password"})
	wantErr(t, err, provider.ErrUnauthenticated)
}

func TestUnreachableEndpoints(t *testing.T) {
	srv := newServer(t)
	closed := closedURL(t)
	ns := newNamespace(t)
	createSecret(t, ns, "azure-credentials", map[string][]byte{
		"client-id": []byte("reader"), "client-secret": []byte("cs-" + canary),
	})
	srv.AddApp(kvserver.App{ClientID: "reader", ClientSecret: "cs-" + canary, Access: kvserver.ReadAll})

	t.Run("vault", func(t *testing.T) {
		store := spStore(srv, ns)
		store.Spec.Provider.AzureKV.VaultURL = ptr(closed)
		c := mustClient(t, providerFor(srv, nil), options(store, ns, nil))
		_, err := c.GetSecret(testContext(t), provider.Ref{Key: "db-password"})
		wantErr(t, err, provider.ErrUnreachable)
	})
	t.Run("Entra ID", func(t *testing.T) {
		p := NewWithOptions(Options{Transport: srv.HTTPClient(), AuthorityHost: closed, DisableChallengeResourceVerification: true})
		c := mustClient(t, p, options(spStore(srv, ns), ns, nil))
		_, err := c.GetSecret(testContext(t), provider.Ref{Key: "db-password"})
		wantErr(t, err, provider.ErrUnreachable)
		wantErr(t, c.Validate(testContext(t)), provider.ErrUnreachable)
	})
}

// closedURL is an https URL nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "https://" + addr
}

// The SecretSync front-end builds clients from a SecretProviderClass's
// parameters and a SecretSync's ServiceAccount.
func TestNewClientForSecretProviderClassParameters(t *testing.T) {
	srv := newServer(t)
	ns := newNamespace(t)
	issuer := srv.TrustKubernetesIssuer(testContext(t), t, kubeConfig)
	srv.AddApp(kvserver.App{ClientID: "uami-client-id", Access: kvserver.ReadAll, Federated: []kvserver.FederatedCredential{
		{Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":my-service-account"},
	}})
	createServiceAccount(t, ns, "my-service-account", nil)
	createServiceAccount(t, ns, "annotated", map[string]string{AnnotationClientID: "uami-client-id", AnnotationTenantID: srv.TenantID()})
	v1 := srv.SetSecret("my-secret", "one-"+canary)
	v2 := srv.SetSecret("my-secret", "two-"+canary)
	p := providerFor(srv, nil)
	opts := provider.Options{Kube: kube, Tokens: &tokenRequester{}}

	c, err := p.NewClientFor(testContext(t), AzureParams{
		VaultURL: srv.VaultURL(), TenantID: srv.TenantID(), ClientID: "uami-client-id",
		ServiceAccountNamespace: ns, ServiceAccountName: "my-service-account",
	}, opts)
	if err != nil {
		t.Fatalf("NewClientFor: %v", err)
	}
	got, err := c.Versions(testContext(t), "my-secret", 2)
	if err != nil {
		t.Fatalf("Versions: %v", err)
	}
	if len(got) != 2 || got[0].Version != v2 || got[1].Version != v1 {
		t.Fatalf("Versions(my-secret, 2) = %v, want [%s %s]", versionsOf(got), v2, v1)
	}

	// Client and tenant from the ServiceAccount's annotations; this one is
	// not federated, so Entra ID refuses it.
	c, err = p.NewClientFor(testContext(t), AzureParams{VaultURL: srv.VaultURL(), ServiceAccountNamespace: ns, ServiceAccountName: "annotated"}, opts)
	if err != nil {
		t.Fatalf("NewClientFor: %v", err)
	}
	_, err = c.GetSecret(testContext(t), provider.Ref{Key: "my-secret"})
	wantErr(t, err, provider.ErrUnauthenticated)

	_, err = p.NewClientFor(testContext(t), AzureParams{VaultName: "my-kv", ServiceAccountNamespace: ns, ServiceAccountName: "my-service-account"}, opts)
	wantErr(t, err, provider.ErrInvalidConfig) // no client ID anywhere
}

func TestGermanCloudIsRefused(t *testing.T) {
	err := New().ValidateSpec(clusterStore(&esv1.AzureKVProvider{
		VaultURL: ptr("https://v.vault.microsoftazure.de"), EnvironmentType: esv1.AzureEnvironmentGermanCloud,
		AuthType: ptr(esv1.AzureManagedIdentity),
	}))
	wantErr(t, err, provider.ErrInvalidConfig)
}
