package providers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

const (
	vaultExampleDir = "examples/vault"
	// vaultServerAddr is the server of ESO's example (and of the tests'
	// stores): http://my.vault.server:8200.
	vaultServerAddr = "my.vault.server:8200"
)

// ESO's example, applied as it is: the SecretStore for
// http://my.vault.server:8200 with the token "root" from the vault-token
// Secret, and the ExternalSecret that reads my-value of secret/foo.
//
// ESO's manifest lists the SecretStore before the vault-token Secret it
// reads, so the store is first validated without its token: it must become
// Ready once the Secret exists, as it does in ESO.
func TestVaultExampleReadsAPropertyWithAToken(t *testing.T) {
	value := "s3cr3t-" + canary
	vaultSrv.PutKV(t, "secret", 2, "foo", map[string]any{"my-value": value})
	vaultSrv.Write(t, "secret/metadata/foo", map[string]any{"custom_metadata": map[string]any{"dev": "seb"}})
	ns := env.Namespace(t)
	env.Apply(t, ns, vaultExampleDir)
	env.WaitReady(t, ns, "vault-example", metav1.ConditionTrue, synced)
	s := env.WaitSecret(t, ns, "example-sync", testenv.HasData(map[string]string{"foobar": value, "developer": "seb"}))
	// metadataPolicy Fetch without a property: the custom metadata and
	// Vault's system metadata, as JSON, never the value.
	var tags map[string]string
	if err := json.Unmarshal(s.Data["tags"], &tags); err != nil || tags["dev"] != "seb" || tags["current_version"] == "" {
		t.Fatalf("tags = %s (%v); want the custom metadata dev=seb and the system metadata", s.Data["tags"], err)
	}
	if strings.Contains(string(s.Data["tags"]), value) {
		t.Fatal("the secret's value was written where its metadata was asked")
	}
	if n := vaultRoutes.requests(vaultServerAddr, "/v1/secret/data/foo"); n == 0 {
		t.Fatalf("no request for secret/data/foo reached Vault as %s", vaultServerAddr)
	}
	assertNoLeak(t, ns, "vault-example")
	env.WaitStoreReady(t, ns, "vault-backend")
}

// AppRole: the role id in the store, the secret id in a Secret.
func TestVaultAppRoleAuth(t *testing.T) {
	ns := env.Namespace(t)
	vaultSrv.PutKV(t, "secret", 2, ns+"/db", map[string]any{"password": "approle-" + canary})
	policy := readerPolicy(t, ns)
	enableAuth(t, "approle", "approle")
	role := "auth/approle/role/" + ns
	vaultSrv.Write(t, role, map[string]any{"token_policies": []string{policy}, "token_ttl": "1h"})
	roleID := fmt.Sprint(vaultSrv.Read(t, role+"/role-id").Data["role_id"])
	secretID := fmt.Sprint(vaultSrv.Write(t, role+"/secret-id", nil).Data["secret_id"])
	secretMustNotLeak(secretID)

	env.Apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: approle
stringData:
  secret-id: %s
---
`, secretID)+vaultStore("store", fmt.Sprintf(`appRole:
  path: "approle"
  roleId: %q
  secretRef:
    name: "approle"
    key: "secret-id"`, roleID))+vaultExternalSecret("app", ns+"/db", "password", "1h"))
	env.WaitStoreReady(t, ns, "store")
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "approle-" + canary}))
	if n := vaultRoutes.requests(vaultServerAddr, "/v1/auth/approle/login"); n == 0 {
		t.Fatal("the operator never logged in at auth/approle/login")
	}
	assertNoLeak(t, ns, "app")
}

// UserPass: the username in the store, the password in a Secret.
func TestVaultUserPassAuth(t *testing.T) {
	ns := env.Namespace(t)
	vaultSrv.PutKV(t, "secret", 2, ns+"/db", map[string]any{"password": "userpass-" + canary})
	policy := readerPolicy(t, ns)
	enableAuth(t, "userpass", "userpass")
	password := "pw-" + canary + "-" + ns
	secretMustNotLeak(password)
	vaultSrv.Write(t, "auth/userpass/users/"+ns, map[string]any{"password": password, "token_policies": []string{policy}, "token_ttl": "1h"})

	env.Apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: vault-password
stringData:
  password: %s
---
`, password)+vaultStore("store", fmt.Sprintf(`userPass:
  path: "userpass"
  username: %q
  secretRef:
    name: "vault-password"
    key: "password"`, ns))+vaultExternalSecret("app", ns+"/db", "password", "1h"))
	env.WaitStoreReady(t, ns, "store")
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "userpass-" + canary}))
	assertNoLeak(t, ns, "app")
}

// Kubernetes auth: the operator requests a token of the ServiceAccount and
// Vault checks it with the test API server's TokenReview. The token carries
// the audience "vault", which the role checks: a SecretStore never sends a
// token with the API server's own audience (docs/security.md).
func TestVaultKubernetesAuth(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	vaultSrv.PutKV(t, "secret", 2, ns+"/db", map[string]any{"password": "k8s-" + canary})
	policy := readerPolicy(t, ns)
	createServiceAccounts(t, ns, "vault-reviewer", "app")
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vault-reviewer-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "vault-reviewer", Namespace: ns}},
	}
	if err := env.Client.Create(ctx, crb); err != nil {
		t.Fatalf("binding system:auth-delegator: %v", err)
	}
	reviewer := serviceAccountToken(t, ns, "vault-reviewer", nil)
	mount := "kubernetes-" + ns
	enableAuth(t, mount, "kubernetes")
	vaultSrv.Write(t, "auth/"+mount+"/config", map[string]any{
		"kubernetes_host":    env.Cluster.Config.Host,
		"kubernetes_ca_cert": string(env.Cluster.Config.CAData),
		"token_reviewer_jwt": reviewer,
	})
	vaultSrv.Write(t, "auth/"+mount+"/role/demo", map[string]any{
		"bound_service_account_names":      []string{"app"},
		"bound_service_account_namespaces": []string{ns},
		"token_policies":                   []string{policy},
		"token_ttl":                        "1h",
		"audience":                         "vault",
	})

	env.Apply(t, ns, vaultStore("store", fmt.Sprintf(`kubernetes:
  mountPath: %q
  role: "demo"
  serviceAccountRef:
    name: "app"
    audiences: ["vault"]`, mount))+vaultExternalSecret("app", ns+"/db", "password", "1h"))
	env.WaitStoreReady(t, ns, "store")
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "k8s-" + canary}))
	assertNoLeak(t, ns, "app")
}

// JWT auth with kubernetesServiceAccountToken: Vault verifies the
// ServiceAccount token with the API server's signing keys.
func TestVaultJWTAuthWithAServiceAccountToken(t *testing.T) {
	ns := env.Namespace(t)
	vaultSrv.PutKV(t, "secret", 2, ns+"/db", map[string]any{"password": "jwt-" + canary})
	policy := readerPolicy(t, ns)
	createServiceAccounts(t, ns, "app")
	issuer := fmt.Sprint(jwtClaims(t, serviceAccountToken(t, ns, "app", []string{"vault"}))["iss"])
	mount := "jwt-" + ns
	enableAuth(t, mount, "jwt")
	vaultSrv.Write(t, "auth/"+mount+"/config", map[string]any{
		"jwt_validation_pubkeys": apiServerKeys(t),
		"bound_issuer":           issuer,
	})
	vaultSrv.Write(t, "auth/"+mount+"/role/vault-jwt-role", map[string]any{
		"role_type":       "jwt",
		"bound_audiences": []string{"vault"},
		"user_claim":      "sub",
		"bound_subject":   "system:serviceaccount:" + ns + ":app",
		"token_policies":  []string{policy},
		"token_ttl":       "1h",
	})

	env.Apply(t, ns, vaultStore("store", fmt.Sprintf(`jwt:
  path: %q
  role: "vault-jwt-role"
  kubernetesServiceAccountToken:
    serviceAccountRef:
      name: "app"`, mount))+vaultExternalSecret("app", ns+"/db", "password", "1h"))
	env.WaitStoreReady(t, ns, "store")
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "jwt-" + canary}))
	assertNoLeak(t, ns, "app")
}

// remoteRef.version reads that KV v2 version; without it, the latest.
func TestVaultVersionSelectsAVersion(t *testing.T) {
	ns := env.Namespace(t)
	first := vaultSrv.PutKV(t, "secret", 2, ns+"/api", map[string]any{"key": "v1-" + canary})
	vaultSrv.PutKV(t, "secret", 2, ns+"/api", map[string]any{"key": "v2-" + canary})
	env.Apply(t, ns, tokenStore(t, ns, "store")+fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data:
  - secretKey: pinned
    remoteRef: {key: %[1]s, property: key, version: "%[2]d"}
  - secretKey: current
    remoteRef: {key: %[1]s, property: key}
`, ns+"/api", first))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"pinned": "v1-" + canary, "current": "v2-" + canary}))
	assertNoLeak(t, ns, "app")
}

// A new version reaches the Secret on the next refresh.
func TestVaultRotationReachesTheSecret(t *testing.T) {
	ns := env.Namespace(t)
	path := ns + "/rotating"
	vaultSrv.PutKV(t, "secret", 2, path, map[string]any{"password": "v1-" + canary})
	env.Apply(t, ns, tokenStore(t, ns, "store")+vaultExternalSecret("app", path, "password", "1s"))
	deleteOnCleanup(t, ns, "app")
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "v1-" + canary}))

	vaultSrv.PutKV(t, "secret", 2, path, map[string]any{"password": "v2-" + canary})
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "v2-" + canary}))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	assertNoLeak(t, ns, "app")
}

// An entry whose metadata is deleted (all versions gone) is
// RemoteSecretNotFound, refresh after refresh, and the Secret keeps its
// value.
func TestVaultDeletedEntryIsNotFoundAndTheSecretStays(t *testing.T) {
	ns := env.Namespace(t)
	path := ns + "/doomed"
	vaultSrv.PutKV(t, "secret", 2, path, map[string]any{"password": "old-" + canary})
	env.Apply(t, ns, tokenStore(t, ns, "store")+vaultExternalSecret("app", path, "password", "1s"))
	deleteOnCleanup(t, ns, "app")
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	before := env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "old-" + canary}))

	vaultSrv.Delete(t, "secret/metadata/"+path)
	es := env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonRemoteNotFound)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, path) {
		t.Errorf("the message does not name %s: %s", path, msg)
	}
	assertUnchanged(t, before)
	vaultRoutes.waitMoreRequests(t, "/v1/secret/data/"+path, 2)
	env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonRemoteNotFound)
	assertUnchanged(t, before)
	waitWarning(t, ns, "app", engine.ReasonRemoteNotFound)
	assertNoLeak(t, ns, "app")
}

// A token whose policy no longer allows the path gets ProviderForbidden;
// the Secret keeps its value.
func TestVaultForbiddenTokenKeepsTheOldSecret(t *testing.T) {
	ns := env.Namespace(t)
	path := ns + "/guarded"
	vaultSrv.PutKV(t, "secret", 2, path, map[string]any{"password": "old-" + canary})
	env.Apply(t, ns, tokenStore(t, ns, "store")+vaultExternalSecret("app", path, "password", "1s"))
	deleteOnCleanup(t, ns, "app")
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	before := env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "old-" + canary}))

	// The token keeps its policy, which now grants nothing on the path.
	vaultSrv.PutPolicy(t, "reader-"+ns, `path "secret/data/`+path+`" { capabilities = ["deny"] }`)
	vaultSrv.PutKV(t, "secret", 2, path, map[string]any{"password": "new-" + canary})
	es := env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonForbidden)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, path) {
		t.Errorf("the message does not name %s: %s", path, msg)
	}
	assertUnchanged(t, before)
	vaultRoutes.waitMoreRequests(t, "/v1/secret/data/"+path, 2)
	env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonForbidden)
	assertUnchanged(t, before)
	waitWarning(t, ns, "app", engine.ReasonForbidden)
	assertNoLeak(t, ns, "app")
}

// dataFrom.find lists below find.path recursively and keeps the entries
// whose custom_metadata holds the tags and whose path matches the regexp;
// the keys are the paths, with "/" made "_".
func TestVaultFindByTagsAndName(t *testing.T) {
	ns := env.Namespace(t)
	tagged := map[string]any{"custom_metadata": map[string]any{"team": ns}}
	for _, e := range []struct {
		path   string
		tagged bool
	}{
		{"app-a", true},
		{"sub/app-b", true},
		{"other-c", true}, // the name does not match
		{"app-plain", false},
	} {
		p := ns + "/" + e.path
		vaultSrv.PutKV(t, "secret", 2, p, map[string]any{"v": e.path + "-" + canary})
		if e.tagged {
			vaultSrv.Write(t, "secret/metadata/"+p, tagged)
		}
	}
	env.Apply(t, ns, tokenStore(t, ns, "store")+fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  dataFrom:
  - find:
      path: %[1]s
      name:
        regexp: "app-"
      tags:
        team: %[1]s
`, ns))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	entry := func(p string) string { return `{"v":"` + p + "-" + canary + `"}` }
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{
		ns + "_app-a":     entry("app-a"),
		ns + "_sub_app-b": entry("sub/app-b"),
	}))
	assertNoLeak(t, ns, "app")
}

// --- Vault helpers ----------------------------------------------------------

// vaultStore is a SecretStore for the KV v2 engine at secret/ of
// http://my.vault.server:8200 with auth (YAML under auth:).
func vaultStore(name, auth string) string {
	return fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: %s
spec:
  provider:
    vault:
      server: "http://%s"
      path: "secret"
      version: "v2"
      auth:
%s
`, name, vaultServerAddr, indent(auth, 8))
}

// tokenStore is a Secret holding a new token with the test's reader policy
// and a SecretStore named name using it.
func tokenStore(t *testing.T, ns, name string) string {
	t.Helper()
	token := vaultSrv.Token(t, readerPolicy(t, ns))
	secretMustNotLeak(token)
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: %s-token
stringData:
  token: %s
---
`, name, token) + vaultStore(name, fmt.Sprintf(`tokenSecretRef:
  name: %s-token
  key: token`, name))
}

// vaultExternalSecret reads property of key into "value".
func vaultExternalSecret(name, key, property, refresh string) string {
	return fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: %s
spec:
  refreshInterval: %s
  secretStoreRef: {name: store}
  data:
  - secretKey: value
    remoteRef: {key: %s, property: %s}
`, name, refresh, key, property)
}

// readerPolicy writes the policy reader-<ns>, which reads and lists the
// entries under secret/<ns>/, and returns its name.
func readerPolicy(t *testing.T, ns string) string {
	t.Helper()
	name := "reader-" + ns
	vaultSrv.PutPolicy(t, name, fmt.Sprintf(`path "secret/data/%[1]s/*" { capabilities = ["read"] }
path "secret/metadata/%[1]s/*" { capabilities = ["read", "list"] }
`, ns))
	return name
}

var (
	authMu      sync.Mutex
	authEnabled = map[string]bool{}
)

// enableAuth enables an auth method at path once per server.
func enableAuth(t *testing.T, path, method string) {
	t.Helper()
	authMu.Lock()
	defer authMu.Unlock()
	if !authEnabled[path] {
		vaultSrv.EnableAuth(t, path, method)
		authEnabled[path] = true
	}
}

func createServiceAccounts(t *testing.T, ns string, names ...string) {
	t.Helper()
	for _, name := range names {
		if err := env.Client.Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
			t.Fatalf("creating ServiceAccount %s/%s: %v", ns, name, err)
		}
	}
}

// serviceAccountToken requests a token of a ServiceAccount.
func serviceAccountToken(t *testing.T, ns, name string, audiences []string) string {
	t.Helper()
	secs := int64(time.Hour / time.Second)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token of %s/%s: %v", ns, name, err)
	}
	secretMustNotLeak(tr.Status.Token)
	return tr.Status.Token
}

// apiServerKeys returns, as PEM, the keys the API server signs
// ServiceAccount tokens with (its /openid/v1/jwks).
func apiServerKeys(t *testing.T) []string {
	t.Helper()
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("reading the API server's JWKS: %v", err)
	}
	var set struct {
		Keys []struct{ Kty, Crv, N, E, X, Y string } `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("decoding the API server's JWKS: %v", err)
	}
	number := func(s string) *big.Int {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("a JWK number: %v", err)
		}
		return new(big.Int).SetBytes(b)
	}
	var out []string
	for _, k := range set.Keys {
		var pub any
		switch {
		case k.Kty == "RSA":
			pub = &rsa.PublicKey{N: number(k.N), E: int(number(k.E).Int64())}
		case k.Kty == "EC" && k.Crv == "P-256":
			pub = &ecdsa.PublicKey{Curve: elliptic.P256(), X: number(k.X), Y: number(k.Y)}
		default:
			continue
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	}
	if len(out) == 0 {
		t.Fatalf("the API server's JWKS holds no RSA or P-256 key: %s", raw)
	}
	return out
}

// indent indents every line of s by n spaces.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = pad + l
	}
	return strings.Join(lines, "\n")
}

// vaultProxy stands for my.vault.server:8200: its DialContext is the vault
// provider's dialer, sending connections for that address (and no other) to
// a reverse proxy in front of the dev server, which counts the requests it
// forwards.
type vaultProxy struct {
	srv *httptest.Server

	mu    sync.Mutex
	count map[string]int // by Host + path
}

func newVaultProxy(tb testing.TB, target string) *vaultProxy {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatalf("vault address %q: %v", target, err)
	}
	p := &vaultProxy{count: map[string]int{}}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) }}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.count[r.Host+r.URL.Path]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(p.srv.Close)
	return p
}

// DialContext connects to the proxy for vaultServerAddr.
func (p *vaultProxy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr != vaultServerAddr {
		return nil, fmt.Errorf("test dialer: %s is not %s", addr, vaultServerAddr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, p.srv.Listener.Addr().String())
}

// requests counts the requests for path sent to host.
func (p *vaultProxy) requests(host, path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count[host+path]
}

// waitMoreRequests waits until n more requests for path have been sent.
func (p *vaultProxy) waitMoreRequests(t *testing.T, path string, n int) {
	t.Helper()
	start := p.requests(vaultServerAddr, path)
	testenv.Eventually(t, fmt.Sprintf("%d more requests for %s", n, path), func(context.Context) (bool, string) {
		got := p.requests(vaultServerAddr, path) - start
		return got >= n, strconv.Itoa(got) + " more requests"
	})
}
