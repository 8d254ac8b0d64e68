package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// remoteRef.metadataPolicy Fetch writes a secret's tags where ESO's
// documentation (aws-sm-external-secret.yaml) writes them: all tags as JSON
// without a property, one tag with one, and one key per tag through
// dataFrom.extract. The secret's value never lands in those keys.
func TestAWSMetadataPolicyFetchWritesTheTags(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	name := "meta-" + ns
	if _, err := adminSM(awsRegion).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String(name),
		SecretString: aws.String(`{"password":"` + canary + `"}`),
		Tags:         []smtypes.Tag{{Key: aws.String("dev"), Value: aws.String("seb")}, {Key: aws.String("team"), Value: aws.String("payments")}},
	}); err != nil {
		t.Fatal(err)
	}
	deleteOnCleanup(t, ns, "app", "extract")
	env.Apply(t, ns, awsStore("store", awsRegion, newAccessKeyID(), "")+fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data:
  - secretKey: password
    remoteRef: {key: %[1]s, property: password}
  # metadataPolicy to fetch all the tags in JSON format
  - secretKey: tags
    remoteRef: {key: %[1]s, metadataPolicy: Fetch}
  # metadataPolicy to fetch a specific tag (dev)
  - secretKey: developer
    remoteRef: {key: %[1]s, metadataPolicy: Fetch, property: dev}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: extract
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  dataFrom:
  - extract: {key: %[1]s, metadataPolicy: Fetch}
`, name))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	s := env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{
		"password":  canary,
		"tags":      `{"dev":"seb","team":"payments"}`,
		"developer": "seb",
	}))
	for _, k := range []string{"tags", "developer"} {
		if strings.Contains(string(s.Data[k]), canary) {
			t.Fatalf("the secret's value was written to %q, where its metadata was asked", k)
		}
	}
	env.WaitReady(t, ns, "extract", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "extract", func(s *corev1.Secret) (bool, string) {
		if len(s.Data) != 2 || string(s.Data["dev"]) != "seb" || string(s.Data["team"]) != "payments" {
			return false, fmt.Sprintf("keys %q", keys(s.Data))
		}
		return true, ""
	})
	assertNoLeak(t, ns, "app", "extract")
}

// A provider without metadata refuses metadataPolicy Fetch: Ready=False
// with reason MetadataNotSupported and a Warning Event, and the value is
// never written in place of the metadata.
func TestMetadataPolicyFetchOnAProviderWithoutMetadataIsRefused(t *testing.T) {
	ns := env.Namespace(t)
	deleteOnCleanup(t, ns, "app")
	env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: fake
spec:
  provider:
    fake:
      data:
      - {key: db, value: "%s"}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: fake}
  data:
  - secretKey: tags
    remoteRef: {key: db, metadataPolicy: Fetch}
`, canary))
	es := env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonMetadataNotSupported)
	for _, c := range es.Status.Conditions {
		if c.Type == "Ready" && !strings.Contains(c.Message, "metadataPolicy") {
			t.Errorf("Ready message does not say what to change: %q", c.Message)
		}
	}
	waitWarning(t, ns, "app", engine.ReasonMetadataNotSupported)
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, &corev1.Secret{}); err == nil {
		t.Fatal("a Secret was written")
	}
	assertNoLeak(t, ns, "app")
}

// Vault: ESO's example (hashicorp-vault.md) with its two metadataPolicy
// Fetch entries: all of custom_metadata (with the system metadata ESO adds)
// as JSON, and one label.
func TestVaultMetadataPolicyFetchWritesCustomMetadata(t *testing.T) {
	ns := env.Namespace(t)
	key := ns + "/foo"
	vaultSrv.PutKV(t, "secret", 2, key, map[string]any{"my-value": canary})
	vaultSrv.Write(t, "secret/metadata/"+key, map[string]any{"custom_metadata": map[string]any{"dev": "seb"}})
	deleteOnCleanup(t, ns, "vault-example")
	env.Apply(t, ns, tokenStore(t, ns, "store")+fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: vault-example
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store, kind: SecretStore}
  target: {name: example-sync}
  data:
  - secretKey: foobar
    remoteRef: {key: %[1]s, property: my-value}
  # metadataPolicy to fetch all the labels in JSON format
  - secretKey: tags
    remoteRef: {metadataPolicy: Fetch, key: %[1]s}
  # metadataPolicy to fetch a specific label (dev) from the source secret
  - secretKey: developer
    remoteRef: {metadataPolicy: Fetch, key: %[1]s, property: dev}
`, key))
	env.WaitReady(t, ns, "vault-example", metav1.ConditionTrue, synced)
	s := env.WaitSecret(t, ns, "example-sync", func(s *corev1.Secret) (bool, string) {
		if string(s.Data["foobar"]) != canary || string(s.Data["developer"]) != "seb" {
			return false, fmt.Sprintf("keys %q", keys(s.Data))
		}
		return true, ""
	})
	var tags map[string]string
	if err := json.Unmarshal(s.Data["tags"], &tags); err != nil {
		t.Fatalf("tags is not a JSON object of strings: %v", err)
	}
	if tags["dev"] != "seb" || tags["current_version"] != "1" || tags["created_time"] == "" || len(tags) != 4 {
		t.Errorf("tags = %v, want custom_metadata and created_time, current_version, delete_version_after", tags)
	}
	if strings.Contains(string(s.Data["tags"]), canary) {
		t.Fatal("the entry's value was written where its metadata was asked")
	}
	assertNoLeak(t, ns, "vault-example")
}
