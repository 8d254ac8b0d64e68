package providers

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// vaultPushStore is a token Secret with a policy writing under ns/ of the
// KV v2 engine secret/ and the KV v1 engine mount, and the SecretStores
// named name (secret/, v2) and name-v1 (mount, v1) using it.
func vaultPushStore(t *testing.T, ns, name, mount string) string {
	t.Helper()
	policy := "pusher-" + ns
	vaultSrv.PutPolicy(t, policy, fmt.Sprintf(`path "secret/data/%[1]s/*" { capabilities = ["create", "read", "update", "delete"] }
path "secret/metadata/%[1]s/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "%[2]s/%[1]s/*" { capabilities = ["create", "read", "update", "delete"] }
`, ns, mount))
	token := vaultSrv.Token(t, policy)
	secretMustNotLeak(token)
	auth := fmt.Sprintf("tokenSecretRef:\n  name: %s-token\n  key: token", name)
	v1 := strings.Replace(strings.Replace(vaultStore(name+"-v1", auth), `path: "secret"`, fmt.Sprintf("path: %q", mount), 1), `version: "v2"`, `version: "v1"`, 1)
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s-token\nstringData:\n  token: %s\n---\n", name, token) +
		vaultStore(name, auth) + "---\n" + v1
}

// vaultMetadataPushSecret pushes source-key of source-secret to remoteKey
// through store with spec (YAML) as its data[0].metadata's spec.
func vaultMetadataPushSecret(name, store, remoteKey, spec string) string {
	return fmt.Sprintf(`apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: %s
spec:
  refreshInterval: 1h0m0s
  secretStoreRefs:
    - name: %s
      kind: SecretStore
  selector:
    secret:
      name: source-secret
  data:
    - match:
        secretKey: source-key
        remoteRef:
          remoteKey: %s
      metadata:
        apiVersion: kubernetes.external-secrets.io/v1alpha1
        kind: PushSecretMetadata
        spec:
%s
`, name, store, remoteKey, indent(spec, 10))
}

// vaultCustomMetadata reads the custom_metadata of a KV v2 entry under
// secret/ from the metadata endpoint.
func vaultCustomMetadata(t *testing.T, key string) map[string]string {
	t.Helper()
	sec := vaultSrv.Read(t, "secret/metadata/"+key)
	if sec == nil {
		return nil
	}
	raw, _ := sec.Data["custom_metadata"].(map[string]any)
	out := map[string]string{}
	for k, v := range raw {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// A PushSecret's data[].metadata (customMetadata, mergePolicy) lands in the
// KV v2 entry's custom_metadata, on the metadata endpoint, beside the
// managed-by mark: Merge keeps a key someone else set, Replace drops it but
// never the mark, and the entry stays keyferry's (and ESO's). On a KV v1
// store the metadata is refused, Ready=False InvalidPush, and nothing is
// written.
func TestVaultPushMetadataSetsCustomMetadata(t *testing.T) {
	ns := env.Namespace(t)
	mount := "kv1-" + ns
	vaultSrv.EnableKV(t, mount, 1)
	key := ns + "/secret1"
	env.Apply(t, ns, vaultPushStore(t, ns, "vault-secretstore", mount)+fmt.Sprintf(`---
apiVersion: v1
kind: Secret
metadata:
  name: source-secret
stringData:
  source-key: '{"foo":"bar-%s"}'
---
`, canary)+vaultMetadataPushSecret("pushsecret-with-metadata", "vault-secretstore", key, `mergePolicy: Merge
customMetadata:
  environment: dev
  team: payments`))
	deleteGCPPushSecretsOnCleanup(t, ns, "pushsecret-with-metadata", "to-kv1")

	t.Run("customMetadata lands beside the mark", func(t *testing.T) {
		waitGCPPushReady(t, ns, "pushsecret-with-metadata", corev1.ConditionTrue, pushsecret.ReasonSynced)
		want := map[string]string{provider.ManagedByKey: provider.ManagedByValue, "environment": "dev", "team": "payments"}
		if got := vaultCustomMetadata(t, key); !maps.Equal(got, want) {
			t.Fatalf("custom_metadata of %s = %v; want %v", key, got, want)
		}
		data, _ := vaultSrv.Read(t, "secret/data/"+key).Data["data"].(map[string]any)
		if data["foo"] != "bar-"+canary {
			t.Fatal("the value was not pushed")
		}
	})

	t.Run("Merge keeps someone else's key, Replace drops it, the mark stays", func(t *testing.T) {
		vaultSrv.Write(t, "secret/metadata/"+key, map[string]any{"custom_metadata": map[string]any{
			provider.ManagedByKey: provider.ManagedByValue, "environment": "dev", "team": "payments", "owner": "ops"}})
		setPushMetadataSpec(t, ns, "pushsecret-with-metadata", `{"customMetadata":{"environment":"prod"}}`)
		want := map[string]string{provider.ManagedByKey: provider.ManagedByValue, "environment": "prod", "team": "payments", "owner": "ops"}
		testenv.Eventually(t, "custom_metadata merged", func(context.Context) (bool, string) {
			got := vaultCustomMetadata(t, key)
			return maps.Equal(got, want), fmt.Sprintf("%v", got)
		})
		setPushMetadataSpec(t, ns, "pushsecret-with-metadata", `{"mergePolicy":"Replace","customMetadata":{"environment":"prod"}}`)
		want = map[string]string{provider.ManagedByKey: provider.ManagedByValue, "environment": "prod"}
		testenv.Eventually(t, "custom_metadata replaced", func(context.Context) (bool, string) {
			got := vaultCustomMetadata(t, key)
			return maps.Equal(got, want), fmt.Sprintf("%v", got)
		})
		waitGCPPushReady(t, ns, "pushsecret-with-metadata", corev1.ConditionTrue, pushsecret.ReasonSynced)
		if v := vaultSrv.Read(t, "secret/metadata/"+key).Data["current_version"]; fmt.Sprint(v) != "1" {
			t.Fatalf("current_version = %v; want 1: a metadata change does not write the data again", v)
		}
	})

	t.Run("KV v1 refuses the metadata and writes nothing", func(t *testing.T) {
		env.Apply(t, ns, vaultMetadataPushSecret("to-kv1", "vault-secretstore-v1", ns+"/secret1", `customMetadata:
  environment: dev`))
		ps := waitGCPPushReady(t, ns, "to-kv1", corev1.ConditionFalse, pushsecret.ReasonInvalidPush)
		if c := gcpPushReadyCondition(ps); !strings.Contains(c.Message, "KV v1") || !strings.Contains(c.Message, "metadata") {
			t.Fatalf("Ready message %q does not say KV v1 takes no metadata", c.Message)
		}
		waitGCPPushWarning(t, ns, "to-kv1", pushsecret.ReasonInvalidPush)
		if sec := vaultSrv.Read(t, mount+"/"+ns+"/secret1"); sec != nil {
			t.Fatalf("the KV v1 entry was written: %v", sec.Data)
		}
	})
	assertGCPPushNoLeak(t, ns, "pushsecret-with-metadata", "to-kv1")
}

// setPushMetadataSpec sets data[0].metadata.spec of a PushSecret (JSON).
func setPushMetadataSpec(t *testing.T, ns, name, spec string) {
	t.Helper()
	testenv.Eventually(t, "PushSecret "+name+" updated", func(ctx context.Context) (bool, string) {
		var ps esv1alpha1.PushSecret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ps); err != nil {
			return false, err.Error()
		}
		ps.Spec.Data[0].Metadata.Raw = []byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":` + spec + `}`)
		if err := env.Client.Update(ctx, &ps); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}
