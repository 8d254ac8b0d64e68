package pushsecret_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/keyferry/keyferry/internal/controller/pushsecret"
)

// data[].conversionStrategy ReverseUnicode (ESO's) turns the _UXXXX_
// escapes an ExternalSecret's conversionStrategy Unicode writes back into
// the characters: secretKey names the decoded key, and a whole-Secret push
// writes the decoded keys.
func TestReverseUnicodePushesTheDecodedKeys(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fmt.Sprintf(vaultStore, "vault", "vault-token", "vault-token", "root"))
	env.Apply(t, ns, `apiVersion: v1
kind: Secret
metadata:
  name: src
stringData:
  app_U002f_db: `+canary+`-db
  plain: `+canary+`-plain
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: reverse-unicode
spec:
  secretStoreRefs: [{name: vault}]
  selector: {secret: {name: src}}
  data:
    - conversionStrategy: ReverseUnicode
      match:
        secretKey: app/db
        remoteRef: {remoteKey: `+ns+`-one, property: db}
    - conversionStrategy: ReverseUnicode
      match:
        remoteRef: {remoteKey: `+ns+`-whole}
`)
	ps := waitPushReady(t, ns, "reverse-unicode", corev1.ConditionTrue, pushsecret.ReasonSynced)
	waitVaultEntry(t, ns+"-one", map[string]string{"db": canary + "-db"})
	waitVaultEntry(t, ns+"-whole", map[string]string{"app/db": canary + "-db", "plain": canary + "-plain"})
	if d := ps.Status.SyncedPushSecrets["SecretStore/vault"][ns+"-one/db"]; d.ConversionStrategy != "ReverseUnicode" {
		t.Errorf("syncedPushSecrets records %+v; want the spec entry", d)
	}

	t.Run("without the conversion the decoded key is not found", func(t *testing.T) {
		env.Apply(t, ns, pushSecretYAML("no-conversion", "vault", "Replace", "None", "src", [3]string{"app/db", ns + "-two", "db"}))
		waitPushReady(t, ns, "no-conversion", corev1.ConditionFalse, pushsecret.ReasonSourceKeyNotFound)
	})
	noLeak(t, ns)
}
