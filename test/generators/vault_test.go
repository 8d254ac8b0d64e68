package generators

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/all"
	"github.com/keyferry/keyferry/internal/provider/vault"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	"github.com/keyferry/keyferry/internal/testing/testserver/vaultserver"
)

// esoVaultServer is the server of ESO's VaultDynamicSecret example.
const esoVaultServer = "vault.default.svc.cluster.local:8200"

// startVault is start with the vault provider dialing the dev server for
// ESO's example's server name.
func startVault(t *testing.T, ns string, v *vaultserver.Server, policy provider.Policy) *proc {
	t.Helper()
	dev := strings.TrimPrefix(v.Addr, "http://")
	var d net.Dialer
	reg := all.Registry(all.Options{Config: env.Cluster.Config})
	reg.Register("vault", vault.NewWithOptions(vault.Options{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == esoVaultServer {
			addr = dev
		}
		return d.DialContext(ctx, network, addr)
	}}))
	return startWith(t, ns, reg, policy)
}

// setupVaultPKI mounts ESO's example's PKI engine (pki, role
// example-dot-com) and Kubernetes auth (kubernetes, role
// external-secrets-operator for the ServiceAccount default of ns).
func setupVaultPKI(t *testing.T, v *vaultserver.Server, ns string) {
	t.Helper()
	ctx := context.Background()
	if err := v.Client(t).Sys().MountWithContext(ctx, "pki", &vaultapi.MountInput{Type: "pki", Config: vaultapi.MountConfigInput{MaxLeaseTTL: "24h"}}); err != nil {
		t.Fatalf("mounting pki: %v", err)
	}
	v.Write(t, "pki/root/generate/internal", map[string]any{"common_name": "example.com", "ttl": "24h"})
	v.Write(t, "pki/roles/example-dot-com", map[string]any{"allow_any_name": true, "allow_ip_sans": true, "max_ttl": "1h"})
	v.PutPolicy(t, "pki-issuer", `path "pki/issue/*" { capabilities = ["create", "update"] }`)

	cs, err := kubernetes.NewForConfig(env.Cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, sa := range []string{"default", "vault-reviewer"} {
		_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vault-reviewer-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "vault-reviewer", Namespace: ns}},
	}
	if err := env.Client.Create(ctx, crb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), crb) })
	secs := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "vault-reviewer", &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v.EnableAuth(t, "kubernetes", "kubernetes")
	v.Write(t, "auth/kubernetes/config", map[string]any{
		"kubernetes_host":    env.Cluster.Config.Host,
		"kubernetes_ca_cert": string(env.Cluster.Config.CAData),
		"token_reviewer_jwt": tr.Status.Token,
	})
	v.Write(t, "auth/kubernetes/role/external-secrets-operator", map[string]any{
		"bound_service_account_names":      []string{"default"},
		"bound_service_account_namespaces": []string{ns},
		"token_policies":                   []string{"pki-issuer"},
		"token_ttl":                        "1h",
	})
}

// TestESOVaultDynamicSecretExample applies ESO's PKI example as it is. Its
// kubernetes auth names the ServiceAccount default without audiences: the
// token would carry the API server's own audience and leave the cluster,
// which a namespaced generator may not do (as a SecretStore may not) until
// the platform grants api-token for the namespace. Then the certificate is
// issued and its fields are the Secret's keys.
func TestESOVaultDynamicSecretExample(t *testing.T) {
	v := vaultserver.StartWithOptions(t, vaultserver.Options{RootToken: "root"})
	ns := env.Namespace(t)
	setupVaultPKI(t, v, ns)
	// The example's server is plain http on a cluster name.
	p1 := startVault(t, ns, v, provider.Policy{AllowInsecureHTTP: true})
	env.Apply(t, ns, "examples/generators/vault.yaml")
	es := env.WaitReady(t, ns, "pki-example-com", metav1.ConditionFalse, engine.ReasonOperatorIdentityNotAllowed)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, "VaultDynamicSecret pki-example") || !strings.Contains(msg, "audience") {
		t.Fatalf("message %q does not name the generator and the audience rule", msg)
	}
	waitEvent(t, ns, "pki-example-com", engine.ReasonOperatorIdentityNotAllowed)

	p1.stop(t)
	p2 := startVault(t, ns, v, provider.Policy{AllowInsecureHTTP: true,
		AmbientIdentities: []provider.IdentityGrant{{Identity: provider.IdentityAPIToken, Namespace: ns}}})
	env.ForceSync(t, ns, "pki-example-com")
	env.WaitReady(t, ns, "pki-example-com", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	s := env.GetSecret(t, ns, "pki-example-com")
	for _, k := range []string{"certificate", "private_key", "issuing_ca", "serial_number", "expiration"} {
		if len(s.Data[k]) == 0 {
			t.Fatalf("pki-example-com has no %s (keys %v)", k, keysOf(s.Data))
		}
	}
	if !strings.HasPrefix(string(s.Data["certificate"]), "-----BEGIN CERTIFICATE-----") {
		t.Fatal("certificate is not PEM")
	}
	assertNoLeak(t, ns, string(s.Data["private_key"]), p1, p2)
}

// TestVaultDynamicSecretResultTypes: a token from auth/token/create
// (resultType Auth, with a token from a Secret of the namespace), a KV
// entry's whole answer (Raw, GET), and a spec without path refused.
func TestVaultDynamicSecretResultTypes(t *testing.T) {
	v := vaultserver.StartWithOptions(t, vaultserver.Options{RootToken: "root"})
	ns := env.Namespace(t)
	v.PutKV(t, "secret", 2, "gen/app", map[string]any{"user": "app"})
	p := startVault(t, ns, v, provider.Policy{})
	prov := fmt.Sprintf(`  provider:
    server: %q
    auth:
      tokenSecretRef: {name: vault-token, key: token}`, v.Addr)
	env.Apply(t, ns, `apiVersion: v1
kind: Secret
metadata:
  name: vault-token
stringData:
  token: root
---
apiVersion: generators.external-secrets.io/v1alpha1
kind: VaultDynamicSecret
metadata:
  name: token
spec:
  path: auth/token/create
  method: POST
  parameters: {policies: [default], ttl: 1h}
  resultType: Auth
`+prov+`
---
apiVersion: generators.external-secrets.io/v1alpha1
kind: VaultDynamicSecret
metadata:
  name: raw
spec:
  path: /secret/data/gen/app
  method: GET
  getParameters: {version: ["1"]}
  resultType: Raw
`+prov+`
---
apiVersion: generators.external-secrets.io/v1alpha1
kind: VaultDynamicSecret
metadata:
  name: nopath
spec:
`+prov+`
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: token
spec:
  refreshInterval: 1h
  target: {name: token}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: VaultDynamicSecret, name: token}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: raw
spec:
  target: {name: raw}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: VaultDynamicSecret, name: raw}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: nopath
spec:
  target: {name: nopath}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: VaultDynamicSecret, name: nopath}
`)
	env.WaitReady(t, ns, "token", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	tok := env.GetSecret(t, ns, "token")
	token := string(tok.Data["client_token"])
	if token == "" || len(tok.Data["accessor"]) == 0 || string(tok.Data["lease_duration"]) != "3600" {
		t.Fatalf("token: keys %v, lease_duration %q; want Vault's auth fields with a 1h lease", keysOf(tok.Data), tok.Data["lease_duration"])
	}
	// The generated token works (it was not revoked with the login).
	if _, err := v.Client(t).Auth().Token().LookupWithContext(context.Background(), token); err != nil {
		t.Fatalf("the generated token is not valid: %v", err)
	}

	env.WaitReady(t, ns, "raw", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	raw := env.GetSecret(t, ns, "raw")
	var data struct {
		Data     map[string]string `json:"data"`
		Metadata struct {
			Version json.Number `json:"version"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw.Data["data"], &data); err != nil || data.Data["user"] != "app" || data.Metadata.Version != "1" {
		t.Fatalf("raw data = %s (%v); want the KV answer of version 1", raw.Data["data"], err)
	}
	if len(raw.Data["request_id"]) == 0 {
		t.Fatalf("raw keys %v: no request_id of the whole answer", keysOf(raw.Data))
	}

	es := env.WaitReady(t, ns, "nopath", metav1.ConditionFalse, engine.ReasonInvalidGeneratorSpec)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, "spec.path") {
		t.Fatalf("message %q does not name spec.path", msg)
	}
	assertNoLeak(t, ns, token, p)
}
