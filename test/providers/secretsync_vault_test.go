package providers

import (
	"context"
	"fmt"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// vaultExampleSPC is test/bats/configs/vault-kv-secretproviderclass.yaml of
// hashicorp/vault-csi-provider (its "Hello World" class), with the Vault
// address the provider's chart would set given as vaultAddress, and the
// auth mount of this test (%s) as vaultKubernetesMountPath, so that tests
// sharing the dev server do not share a mount.
const vaultExampleSPC = `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: vault-kv
spec:
  provider: vault
  parameters:
    vaultAddress: "http://my.vault.server:8200"
    vaultKubernetesMountPath: %q
    roleName: "kv-role"
    audience: "vault"
    objects: |
      - objectName: "secret-1"
        secretPath: "secret/data/kv1"
        secretKey: "bar1"
        filePermission: 0624
      - objectName: "secret-2"
        secretPath: "secret/data/kv2"
        secretKey: "bar2"
`

// vaultClassAuth enables Kubernetes auth at mount for this test's API
// server, with the role kv-role of the provider's example bound to the
// ServiceAccount sa of ns, for the audience "vault", reading secret/.
func vaultClassAuth(t *testing.T, ns, mount, sa string) {
	t.Helper()
	ctx := context.Background()
	createServiceAccounts(t, ns, "vault-reviewer", sa)
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vault-reviewer-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "vault-reviewer", Namespace: ns}},
	}
	if err := env.Client.Create(ctx, crb); err != nil {
		t.Fatalf("binding system:auth-delegator: %v", err)
	}
	enableAuth(t, mount, "kubernetes")
	vaultSrv.Write(t, "auth/"+mount+"/config", map[string]any{
		"kubernetes_host":    env.Cluster.Config.Host,
		"kubernetes_ca_cert": string(env.Cluster.Config.CAData),
		"token_reviewer_jwt": serviceAccountToken(t, ns, "vault-reviewer", nil),
	})
	policy := "kv-" + ns
	vaultSrv.PutPolicy(t, policy, `path "secret/data/kv1" { capabilities = ["read"] }
path "secret/data/kv2" { capabilities = ["read"] }
`)
	vaultSrv.Write(t, "auth/"+mount+"/role/kv-role", map[string]any{
		"bound_service_account_names":      []string{sa},
		"bound_service_account_namespaces": []string{ns},
		"token_policies":                   []string{policy},
		"token_ttl":                        "1h",
		"audience":                         "vault",
	})
}

// The Vault provider's "Hello World" class with a SecretSync: the operator
// logs in with a token of the SecretSync's ServiceAccount for the audience
// "vault", which Vault checks with the API server's TokenReview, reads
// both KV v2 keys and writes the Secret.
func TestVaultSecretSyncServesTheProvidersExample(t *testing.T) {
	ns := env.Namespace(t)
	mount := "kubernetes-" + ns
	vaultClassAuth(t, ns, mount, "app")
	vaultSrv.PutKV(t, "secret", 2, "kv1", map[string]any{"bar1": "one-" + canary})
	vaultSrv.PutKV(t, "secret", 2, "kv2", map[string]any{"bar2": "two-" + canary})
	logins := vaultRoutes.requests(vaultServerAddr, "/v1/auth/"+mount+"/login")
	env.Apply(t, ns, fmt.Sprintf(vaultExampleSPC, mount))
	env.Apply(t, ns, secretSync("vault-kv", "app", "vault-kv", "secret-1", "bar1", "secret-2", "bar2"))

	env.WaitSecret(t, ns, "vault-kv", testenv.HasData(map[string]string{"bar1": "one-" + canary, "bar2": "two-" + canary}))
	waitSecretSync(t, ns, "vault-kv", metav1.ConditionTrue, "")
	if n := vaultRoutes.requests(vaultServerAddr, "/v1/auth/"+mount+"/login") - logins; n == 0 {
		t.Errorf("Vault received no login at %s", mount)
	}
	if n := vaultRoutes.requests(vaultServerAddr, "/v1/secret/data/kv1"); n == 0 {
		t.Errorf("Vault received no read of secret/data/kv1")
	}
	assertSecretSyncNoLeak(t, ns, "vault-kv")
}

// A class without audience would make keyferry send Vault a token this
// cluster's API server accepts: the SecretSync fails with a message that
// says what to do, and Vault receives no login.
func TestVaultSecretSyncWithoutAudienceIsRefused(t *testing.T) {
	ns := env.Namespace(t)
	mount := "kubernetes-" + ns
	createServiceAccounts(t, ns, "app")
	logins := vaultRoutes.requests(vaultServerAddr, "/v1/auth/"+mount+"/login")
	env.Apply(t, ns, fmt.Sprintf(`apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: no-audience
spec:
  provider: vault
  parameters:
    vaultAddress: "http://my.vault.server:8200"
    vaultKubernetesMountPath: %q
    roleName: "kv-role"
    objects: |
      - objectName: "secret-1"
        secretPath: "secret/data/kv1"
        secretKey: "bar1"
`, mount))
	env.Apply(t, ns, secretSync("app", "app", "no-audience", "secret-1", "bar1"))
	waitSecretSync(t, ns, "app", "", "parameters.audience")
	waitSecretSync(t, ns, "app", "", "--allow-ambient-identity="+ns+"/api-token")
	if n := vaultRoutes.requests(vaultServerAddr, "/v1/auth/"+mount+"/login") - logins; n != 0 {
		t.Fatalf("Vault received %d logins", n)
	}
	assertSecretSyncNoLeak(t, ns, "app")
}
