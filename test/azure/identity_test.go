package azure

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

// Issue 9, item 2: the post's WorkloadIdentity SecretStore (no
// serviceAccountRef: the operator's own identity) works in my-namespace,
// which the operator grants; copied into any other namespace it is refused
// before a token is read or Entra ID is asked for one.
func TestWorkloadIdentityWithoutServiceAccountRefOnlyInGrantedNamespaces(t *testing.T) {
	ns := env.Namespace(t)
	requests := srv.TokenRequests()
	env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: operator-identity
spec:
  provider:
    azurekv:
      tenantId: %s
      vaultUrl: %s
      authType: WorkloadIdentity
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: operator-identity}
  data: [{secretKey: value, remoteRef: {key: my-namespace-config}}]
`, tenantID, vaultURL))
	testenv.Eventually(t, "the SecretStore refused with OperatorIdentityNotAllowed", func(ctx context.Context) (bool, string) {
		var ss esv1.SecretStore
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "operator-identity"}, &ss); err != nil {
			return false, err.Error()
		}
		for _, c := range ss.Status.Conditions {
			if c.Type == esv1.SecretStoreReady {
				ok := c.Status == metav1.ConditionFalse && c.Reason == engine.ReasonOperatorIdentityNotAllowed &&
					strings.Contains(c.Message, "--allow-ambient-identity="+ns+"/azure")
				return ok, fmt.Sprintf("Ready=%s reason=%s message=%s", c.Status, c.Reason, c.Message)
			}
		}
		return false, "no Ready condition"
	})
	env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonOperatorIdentityNotAllowed)
	if n := srv.TokenRequests() - requests; n != 0 {
		t.Fatalf("Entra ID received %d token requests for the refused store", n)
	}
}
