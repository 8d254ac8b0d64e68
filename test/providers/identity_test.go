package providers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// waitStoreNotReady waits for a SecretStore's Ready=False with reason and a
// message containing each of want, and returns the message.
func waitStoreNotReady(t *testing.T, ns, name, reason string, want ...string) string {
	t.Helper()
	var msg string
	testenv.Eventually(t, fmt.Sprintf("SecretStore %s/%s Ready=False %s", ns, name, reason), func(ctx context.Context) (bool, string) {
		var ss esv1.SecretStore
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ss); err != nil {
			return false, err.Error()
		}
		for _, c := range ss.Status.Conditions {
			if c.Type != esv1.SecretStoreReady {
				continue
			}
			msg = c.Message
			if c.Status != metav1.ConditionFalse || c.Reason != reason {
				return false, fmt.Sprintf("Ready=%s reason=%s message=%s", c.Status, c.Reason, c.Message)
			}
			for _, w := range want {
				if !strings.Contains(c.Message, w) {
					return false, fmt.Sprintf("message %q lacks %q", c.Message, w)
				}
			}
			return true, ""
		}
		return false, "no Ready condition"
	})
	return msg
}

// Issue 9, item 1: a tenant's SecretStore with Vault kubernetes auth and
// neither serviceAccountRef nor secretRef would make keyferry send its own
// ServiceAccount token to the tenant's vault.server. The store and the
// ExternalSecret say OperatorIdentityNotAllowed, and Vault receives nothing.
func TestNamespacedVaultStoreCannotSendTheOperatorsToken(t *testing.T) {
	ns := env.Namespace(t)
	logins := vaultRoutes.requests(vaultServerAddr, "/v1/auth/kubernetes/login")
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: vault
spec:
  provider:
    vault:
      server: "http://my.vault.server:8200"
      path: secret
      version: v2
      auth:
        kubernetes:
          mountPath: kubernetes
          role: keyferry
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: vault}
  data: [{secretKey: value, remoteRef: {key: foo, property: my-value}}]
`)
	deleteOnCleanup(t, ns, "app")
	waitStoreNotReady(t, ns, "vault", engine.ReasonOperatorIdentityNotAllowed,
		"spec.provider.vault.auth.kubernetes", "--allow-ambient-identity="+ns+"/kubernetes")
	es := env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonOperatorIdentityNotAllowed)
	if c := testenv.ReadyCondition(es); c == nil || !strings.Contains(c.Message, "ClusterSecretStore") {
		t.Errorf("the ExternalSecret's message does not say what to do: %+v", c)
	}
	waitWarning(t, ns, "app", engine.ReasonOperatorIdentityNotAllowed)
	if n := vaultRoutes.requests(vaultServerAddr, "/v1/auth/kubernetes/login") - logins; n != 0 {
		t.Fatalf("Vault received %d kubernetes logins", n)
	}
	assertNoLeak(t, ns, "app")
}

// Issue 9, item 2: an AWS SecretStore without auth would use the operator
// pod's credentials (the default chain); it is refused before any call.
func TestNamespacedAWSStoreCannotUseTheDefaultCredentialChain(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: aws
spec:
  provider:
    aws:
      service: SecretsManager
      region: %s
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: aws}
  data: [{secretKey: value, remoteRef: {key: default-chain-%s}}]
`, awsRegion, ns))
	deleteOnCleanup(t, ns, "app")
	waitStoreNotReady(t, ns, "aws", engine.ReasonOperatorIdentityNotAllowed, "spec.provider.aws.auth", "/aws")
	env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonOperatorIdentityNotAllowed)
	if calls := awsRoutes.requests(func(r awsRequest) bool { return r.mentions("default-chain-" + ns) }); len(calls) != 0 {
		t.Fatalf("%d AWS calls for the refused store", len(calls))
	}
}

// Issue 9, item 7: every provider refuses, with the same reason and
// message, a SecretStore reference into another namespace.
func TestNamespacedStoresRefuseReferencesIntoOtherNamespaces(t *testing.T) {
	ns := env.Namespace(t)
	stores := map[string]string{
		"vault": `vault:
      server: "http://my.vault.server:8200"
      auth:
        tokenSecretRef: {name: vault-token, key: token, namespace: kube-system}`,
		"vault-ca": `vault:
      server: "https://my.vault.server:8200"
      caProvider: {type: ConfigMap, name: ca, key: ca.crt, namespace: kube-system}
      auth:
        tokenSecretRef: {name: vault-token, key: token}`,
		"aws": `aws:
      service: SecretsManager
      region: eu-central-1
      auth:
        secretRef:
          accessKeyIDSecretRef: {name: creds, key: id, namespace: kube-system}
          secretAccessKeySecretRef: {name: creds, key: secret}`,
		"gcpsm": `gcpsm:
      projectID: p
      auth:
        workloadIdentity:
          serviceAccountRef: {name: sa, namespace: kube-system}`,
		"azurekv": `azurekv:
      vaultUrl: https://v.vault.azure.net/
      tenantId: 9b05fdb9-40c0-4f4a-a654-386013ae7d6a
      authType: WorkloadIdentity
      serviceAccountRef: {name: sa, namespace: kube-system}`,
		"webhook": `webhook:
      url: https://example.com/{{ .remoteRef.key }}
      secrets:
        - name: token
          secretRef: {name: creds, key: token, namespace: kube-system}`,
		"kubernetes": `kubernetes:
      remoteNamespace: ` + ns + `
      server:
        caProvider: {type: ConfigMap, name: ca, key: ca.crt, namespace: kube-system}
      auth:
        serviceAccount: {name: sa}`,
	}
	for name, spec := range stores {
		t.Run(name, func(t *testing.T) {
			env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: %s
spec:
  provider:
    %s
`, name, spec))
			waitStoreNotReady(t, ns, name, esv1.ReasonInvalidProviderConfig,
				`.namespace "kube-system": a SecretStore may only reference its own namespace "`+ns+`"`)
		})
	}
}
