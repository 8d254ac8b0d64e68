package vault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testserver/vaultserver"
)

// appRole enables AppRole auth with a role "app" reading secret/ and
// returns its role id and a fresh secret id. extra configures the role.
func appRole(t *testing.T, e *env, extra map[string]any) (roleID, secretID string) {
	t.Helper()
	e.vault.PutPolicy(t, "reader", readerPolicy)
	e.vault.EnableAuth(t, "approle", "approle")
	role := map[string]any{"token_policies": []string{"reader"}, "token_ttl": "1h", "token_max_ttl": "24h"}
	for k, v := range extra {
		role[k] = v
	}
	e.vault.Write(t, "auth/approle/role/app", role)
	roleID = fmt.Sprint(e.vault.Read(t, "auth/approle/role/app/role-id").Data["role_id"])
	secretID = fmt.Sprint(e.vault.Write(t, "auth/approle/role/app/secret-id", nil).Data["secret_id"])
	e.secrets = append(e.secrets, secretID)
	return roleID, secretID
}

func TestAppRoleAuth(t *testing.T) {
	e := newEnv(t)
	val := e.canary()
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": val})
	roleID, secretID := appRole(t, e, nil)
	e.secret("approle", map[string]string{"role-id": roleID, "secret-id": secretID, "wrong": "0e3c8a4f-0000-4000-8000-000000000000"})

	t.Run("roleId", func(t *testing.T) {
		c := e.client(e.spec(&esv1.VaultAuth{AppRole: &esv1.VaultAppRole{Path: "approle", RoleID: roleID,
			SecretRef: esv1.SecretKeySelector{Name: "approle", Key: "secret-id"}}}))
		if got := string(e.get(c, "app").Fields["v"]); got != val {
			t.Errorf("got %q", got)
		}
	})
	t.Run("roleRef", func(t *testing.T) {
		c := e.client(e.spec(&esv1.VaultAuth{AppRole: &esv1.VaultAppRole{
			RoleRef:   &esv1.SecretKeySelector{Name: "approle", Key: "role-id"},
			SecretRef: esv1.SecretKeySelector{Name: "approle", Key: "secret-id"}}}))
		if got := string(e.get(c, "app").Fields["v"]); got != val {
			t.Errorf("got %q", got)
		}
		if err := c.Validate(context.Background()); err != nil {
			t.Errorf("Validate: %v", err)
		}
	})
	t.Run("wrong secret id", func(t *testing.T) {
		c := e.client(e.spec(&esv1.VaultAuth{AppRole: &esv1.VaultAppRole{Path: "approle", RoleID: roleID,
			SecretRef: esv1.SecretKeySelector{Name: "approle", Key: "wrong"}}}))
		_, err := c.GetSecret(context.Background(), provider.Ref{Key: "app"})
		e.wantErr(err, provider.ErrUnauthenticated)
		e.wantErr(c.Validate(context.Background()), provider.ErrUnauthenticated)
	})
	t.Run("missing credential secret", func(t *testing.T) {
		c := e.client(e.spec(&esv1.VaultAuth{AppRole: &esv1.VaultAppRole{Path: "approle", RoleID: roleID,
			SecretRef: esv1.SecretKeySelector{Name: "nope", Key: "secret-id"}}}))
		_, err := c.GetSecret(context.Background(), provider.Ref{Key: "app"})
		e.wantErr(err, provider.ErrInvalidConfig)
	})
}

func TestUserPassAuth(t *testing.T) {
	e := newEnv(t)
	val := e.canary()
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": val})
	e.vault.PutPolicy(t, "reader", readerPolicy)
	e.vault.EnableAuth(t, "userpass", "userpass")
	password := "pw-" + randomHex(8)
	e.vault.Write(t, "auth/userpass/users/alice", map[string]any{"password": password, "token_policies": "reader"})
	e.secret("alice", map[string]string{"password": password, "wrong": "wrong-" + randomHex(8)})

	c := e.client(e.spec(&esv1.VaultAuth{UserPass: &esv1.VaultUserPassAuth{Path: "userpass", Username: "alice",
		SecretRef: esv1.SecretKeySelector{Name: "alice", Key: "password"}}}))
	if got := string(e.get(c, "app").Fields["v"]); got != val {
		t.Errorf("got %q", got)
	}

	bad := e.client(e.spec(&esv1.VaultAuth{UserPass: &esv1.VaultUserPassAuth{Username: "alice",
		SecretRef: esv1.SecretKeySelector{Name: "alice", Key: "wrong"}}}))
	_, err := bad.GetSecret(context.Background(), provider.Ref{Key: "app"})
	e.wantErr(err, provider.ErrUnauthenticated)
}

// kubernetesAuth points Vault's kubernetes auth at the test API server,
// with a reviewer ServiceAccount allowed to review tokens, and a role "app"
// for the ServiceAccount "app" of the test namespace.
func kubernetesAuth(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	for _, sa := range []string{"vault-reviewer", "app"} {
		if err := cluster.kube.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: e.ns}}); err != nil {
			t.Fatalf("creating service account %s: %v", sa, err)
		}
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vault-reviewer-" + e.ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "vault-reviewer", Namespace: e.ns}},
	}
	if err := cluster.kube.Create(ctx, crb); err != nil {
		t.Fatalf("binding system:auth-delegator: %v", err)
	}
	reviewer, _, err := tokenRequester{cluster.cs}.ServiceAccountToken(ctx, e.ns, "vault-reviewer", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.secrets = append(e.secrets, reviewer)
	e.vault.PutPolicy(t, "reader", readerPolicy)
	e.vault.EnableAuth(t, "kubernetes", "kubernetes")
	e.vault.Write(t, "auth/kubernetes/config", map[string]any{
		"kubernetes_host":    cluster.Config.Host,
		"kubernetes_ca_cert": string(cluster.Config.CAData),
		"token_reviewer_jwt": reviewer,
	})
	e.vault.Write(t, "auth/kubernetes/role/app", map[string]any{
		"bound_service_account_names":      []string{"app"},
		"bound_service_account_namespaces": []string{e.ns},
		"token_policies":                   []string{"reader"},
		"token_ttl":                        "1h",
	})
}

func TestKubernetesAuth(t *testing.T) {
	e := newEnv(t)
	val := e.canary()
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": val})
	kubernetesAuth(t, e)

	t.Run("serviceAccountRef through TokenRequest", func(t *testing.T) {
		c := e.client(e.spec(&esv1.VaultAuth{Kubernetes: &esv1.VaultKubernetesAuth{Path: "kubernetes", Role: "app",
			ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "app"}}}))
		if got := string(e.get(c, "app").Fields["v"]); got != val {
			t.Errorf("got %q", got)
		}
	})
	t.Run("secretRef with the default key", func(t *testing.T) {
		tok, _, err := tokenRequester{cluster.cs}.ServiceAccountToken(context.Background(), e.ns, "app", nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		e.secret("app-token", map[string]string{"token": tok})
		c := e.client(e.spec(&esv1.VaultAuth{Kubernetes: &esv1.VaultKubernetesAuth{Role: "app",
			SecretRef: &esv1.SecretKeySelector{Name: "app-token"}}}))
		if got := string(e.get(c, "app").Fields["v"]); got != val {
			t.Errorf("got %q", got)
		}
	})
	t.Run("service account the role does not bind", func(t *testing.T) {
		if err := cluster.kube.Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "intruder", Namespace: e.ns}}); err != nil {
			t.Fatal(err)
		}
		c := e.client(e.spec(&esv1.VaultAuth{Kubernetes: &esv1.VaultKubernetesAuth{Path: "kubernetes", Role: "app",
			ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "intruder"}}}))
		_, err := c.GetSecret(context.Background(), provider.Ref{Key: "app"})
		e.wantErr(err, provider.ErrUnauthenticated)
	})
}

func TestJWTAuth(t *testing.T) {
	e := newEnv(t)
	val := e.canary()
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": val})
	ctx := context.Background()
	if err := cluster.kube.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: e.ns}}); err != nil {
		t.Fatal(err)
	}
	// Vault verifies the API server's ServiceAccount tokens with the keys it
	// publishes at /openid/v1/jwks.
	tok, _, err := tokenRequester{cluster.cs}.ServiceAccountToken(ctx, e.ns, "app", []string{"vault"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.vault.PutPolicy(t, "reader", readerPolicy)
	e.vault.EnableAuth(t, "jwt", "jwt")
	e.vault.Write(t, "auth/jwt/config", map[string]any{
		"jwt_validation_pubkeys": apiServerKeys(t),
		"bound_issuer":           jwtClaim(t, tok, "iss"),
	})
	e.vault.Write(t, "auth/jwt/role/app", map[string]any{
		"role_type":       "jwt",
		"bound_audiences": []string{"vault"},
		"user_claim":      "sub",
		"bound_subject":   "system:serviceaccount:" + e.ns + ":app",
		"token_policies":  []string{"reader"},
		"token_ttl":       "1h",
	})

	t.Run("kubernetesServiceAccountToken with the default audience", func(t *testing.T) {
		c := e.client(e.spec(&esv1.VaultAuth{Jwt: &esv1.VaultJwtAuth{Path: "jwt", Role: "app",
			KubernetesServiceAccountToken: &esv1.VaultKubernetesServiceAccountTokenAuth{ServiceAccountRef: esv1.ServiceAccountSelector{Name: "app"}}}}))
		if got := string(e.get(c, "app").Fields["v"]); got != val {
			t.Errorf("got %q", got)
		}
	})
	t.Run("secretRef", func(t *testing.T) {
		e.secret("jwt", map[string]string{"token": tok})
		c := e.client(e.spec(&esv1.VaultAuth{Jwt: &esv1.VaultJwtAuth{Role: "app",
			SecretRef: &esv1.SecretKeySelector{Name: "jwt", Key: "token"}}}))
		if got := string(e.get(c, "app").Fields["v"]); got != val {
			t.Errorf("got %q", got)
		}
	})
	t.Run("wrong audience", func(t *testing.T) {
		c := e.client(e.spec(&esv1.VaultAuth{Jwt: &esv1.VaultJwtAuth{Path: "jwt", Role: "app",
			KubernetesServiceAccountToken: &esv1.VaultKubernetesServiceAccountTokenAuth{
				ServiceAccountRef: esv1.ServiceAccountSelector{Name: "app"}, Audiences: &[]string{"not-vault"}}}}))
		_, err := c.GetSecret(context.Background(), provider.Ref{Key: "app"})
		e.wantErr(err, provider.ErrUnauthenticated)
	})
}

// apiServerKeys returns the API server's ServiceAccount signing keys as PEM.
func apiServerKeys(t *testing.T) []string {
	t.Helper()
	raw, err := cluster.cs.CoreV1().RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("reading the API server's JWKS: %v", err)
	}
	var jwks struct {
		Keys []struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			N   string `json:"n"`
			E   string `json:"e"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(raw, &jwks); err != nil {
		t.Fatal(err)
	}
	num := func(s string) *big.Int {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("bad JWK number: %v", err)
		}
		return new(big.Int).SetBytes(b)
	}
	var out []string
	for _, k := range jwks.Keys {
		var pub any
		switch {
		case k.Kty == "RSA":
			pub = &rsa.PublicKey{N: num(k.N), E: int(num(k.E).Int64())}
		case k.Kty == "EC" && k.Crv == "P-256":
			pub = &ecdsa.PublicKey{Curve: elliptic.P256(), X: num(k.X), Y: num(k.Y)}
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
		t.Fatalf("no RSA or P-256 key in the API server's JWKS: %s", raw)
	}
	return out
}

func jwtClaim(t *testing.T, jwt, claim string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatal("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(claims[claim])
}

func TestTLSAndCertAuth(t *testing.T) {
	e := newEnv(t, vaultserver.Options{TLS: true})
	val := e.canary()
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": val})
	caPEM, certPEM, keyPEM := clientCertificate(t)
	e.vault.PutPolicy(t, "reader", readerPolicy)
	e.vault.EnableAuth(t, "cert", "cert")
	e.vault.Write(t, "auth/cert/certs/web", map[string]any{"certificate": caPEM, "token_policies": "reader"})
	e.secret("client-tls", map[string]string{"tls.crt": certPEM, "tls.key": keyPEM})
	root := e.rootAuth()

	t.Run("cert auth with its own certificate", func(t *testing.T) {
		c := e.client(e.spec(&esv1.VaultAuth{Cert: &esv1.VaultCertAuth{Path: "cert", VaultRole: "web",
			ClientCert: esv1.SecretKeySelector{Name: "client-tls", Key: "tls.crt"},
			SecretRef:  esv1.SecretKeySelector{Name: "client-tls", Key: "tls.key"}}}))
		if got := string(e.get(c, "app").Fields["v"]); got != val {
			t.Errorf("got %q", got)
		}
	})
	t.Run("cert auth with the tls client certificate", func(t *testing.T) {
		spec := e.spec(&esv1.VaultAuth{Cert: &esv1.VaultCertAuth{}})
		spec.TLS = esv1.VaultClientTLS{CertSecretRef: &esv1.SecretKeySelector{Name: "client-tls"}, KeySecretRef: &esv1.SecretKeySelector{Name: "client-tls"}}
		if got := string(e.get(e.client(spec), "app").Fields["v"]); got != val {
			t.Errorf("got %q", got)
		}
	})
	t.Run("CA from a caProvider ConfigMap", func(t *testing.T) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "vault-ca", Namespace: e.ns}, Data: map[string]string{"ca.crt": string(e.vault.CACert)}}
		if err := cluster.kube.Create(context.Background(), cm); err != nil {
			t.Fatal(err)
		}
		spec := e.spec(root)
		spec.CABundle = nil
		spec.CAProvider = &esv1.CAProvider{Type: esv1.CAProviderTypeConfigMap, Name: "vault-ca", Key: "ca.crt"}
		if got := string(e.get(e.client(spec), "app").Fields["v"]); got != val {
			t.Errorf("got %q", got)
		}
	})
	t.Run("untrusted server certificate", func(t *testing.T) {
		spec := e.spec(root)
		spec.CABundle = nil
		_, err := e.client(spec).GetSecret(context.Background(), provider.Ref{Key: "app"})
		e.wantErr(err, provider.ErrInvalidConfig)
	})
	t.Run("certificate Vault does not trust", func(t *testing.T) {
		_, otherCert, otherKey := clientCertificate(t)
		e.secret("other-tls", map[string]string{"tls.crt": otherCert, "tls.key": otherKey})
		c := e.client(e.spec(&esv1.VaultAuth{Cert: &esv1.VaultCertAuth{
			ClientCert: esv1.SecretKeySelector{Name: "other-tls", Key: "tls.crt"},
			SecretRef:  esv1.SecretKeySelector{Name: "other-tls", Key: "tls.key"}}}))
		_, err := c.GetSecret(context.Background(), provider.Ref{Key: "app"})
		e.wantErr(err, provider.ErrUnauthenticated)
	})
	t.Run("key that does not match the certificate", func(t *testing.T) {
		_, _, otherKey := clientCertificate(t)
		e.secret("mismatch-tls", map[string]string{"tls.crt": certPEM, "tls.key": otherKey})
		_, err := e.newClient(e.spec(&esv1.VaultAuth{Cert: &esv1.VaultCertAuth{
			ClientCert: esv1.SecretKeySelector{Name: "mismatch-tls", Key: "tls.crt"},
			SecretRef:  esv1.SecretKeySelector{Name: "mismatch-tls", Key: "tls.key"}}}))
		e.wantErr(err, provider.ErrInvalidConfig)
	})
}

// clientCertificate returns a CA and a client certificate and key it signed,
// all PEM.
func clientCertificate(t *testing.T) (caPEM, certPEM, keyPEM string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyferry test client CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "keyferry"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
}

func TestIAMAndGCPAuthAreNotSupported(t *testing.T) {
	e := newEnv(t)
	for _, auth := range []*esv1.VaultAuth{{Iam: jsonObject()}, {GCP: jsonObject()}} {
		store := e.store(e.spec(auth))
		_, err := New().NewClient(context.Background(), e.options(store))
		e.wantErr(err, provider.ErrNotSupported)
	}
}
