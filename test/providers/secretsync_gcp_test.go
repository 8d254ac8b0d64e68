package providers

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// gcpExampleSPC is examples/app-secrets.yaml.tmpl of
// GoogleCloudPlatform/secrets-store-csi-driver-provider-gcp with
// $PROJECT_ID filled in (%[1]s, one project per test namespace) and the
// `auth: provider-adc` line of its docs/authentication.md: the operator's
// application default credentials read the secrets. (The default, pod-adc,
// needs GKE's workload identity exchange at sts.googleapis.com, which has
// no local stand-in; internal/provider/gcpsm tests the tokens it sends.)
const gcpExampleSPC = `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: app-secrets
spec:
  provider: gcp
  parameters:
    auth: provider-adc
    secrets: |
      - resourceName: "projects/%[1]s/secrets/testsecret/versions/latest"
        path: "good1.txt"
      - resourceName: "projects/%[1]s/secrets/testsecret/versions/latest"
        path: "good2.txt"
`

// gcpExtractKeySPC is examples/app-secrets-with-extract-key.yaml.tmpl of
// the GCP provider, with $PROJECT_ID filled in and provider-adc as above:
// a global and a regional secret, each a JSON document with a "user".
const gcpExtractKeySPC = `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: app-secrets-with-extract-key
spec:
  provider: gcp
  parameters:
    auth: provider-adc
    secrets: |
      - resourceName: "projects/%[1]s/secrets/testsecret/versions/latest"
        path: "good1.txt"
        extractJSONKey: "user"
      - resourceName: "projects/%[1]s/locations/us-central1/secrets/testsecret/versions/latest"
        path: "good2.txt"
        extractJSONKey: "user"
`

// The GCP provider's examples with SecretSyncs: the operator reads the
// versions from Secret Manager (the emulator) with its default
// credentials and writes the Secrets, extracting JSON keys of a global
// and a regional secret.
func TestGCPSecretSyncServesTheProvidersExamples(t *testing.T) {
	ns := env.Namespace(t)
	project := gcpProject(ns)
	value := `{"user":"global-` + canary + `"}`
	gcp.AddVersion(t, gcp.CreateSecret(t, "projects/"+project, "testsecret", nil), []byte(value))
	gcp.AddVersion(t, gcp.CreateSecret(t, "projects/"+project+"/locations/us-central1", "testsecret", nil), []byte(`{"user":"regional-`+canary+`"}`))
	before := len(gcpFront.Authorizations())
	env.Apply(t, ns, "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: mypodserviceaccount\n")
	env.Apply(t, ns, fmt.Sprintf(gcpExampleSPC, project))
	env.Apply(t, ns, fmt.Sprintf(gcpExtractKeySPC, project))
	env.Apply(t, ns, secretSync("app-secrets", "mypodserviceaccount", "app-secrets", "good1.txt", "good1", "good2.txt", "good2"))
	env.Apply(t, ns, secretSync("extract-key", "mypodserviceaccount", "app-secrets-with-extract-key", "good1.txt", "global", "good2.txt", "regional"))

	env.WaitSecret(t, ns, "app-secrets", testenv.HasData(map[string]string{"good1": value, "good2": value}))
	env.WaitSecret(t, ns, "extract-key", testenv.HasData(map[string]string{"global": "global-" + canary, "regional": "regional-" + canary}))
	for _, ss := range []string{"app-secrets", "extract-key"} {
		waitSecretSync(t, ns, ss, metav1.ConditionTrue, "")
	}
	if !signedBy(t, gcpFront.Authorizations()[before:], &adcKey.PublicKey, adcServiceAccount) {
		t.Fatalf("no request carried a JWT of %s signed with the default credentials' key", adcServiceAccount)
	}
	assertSecretSyncNoLeak(t, ns, "app-secrets", "extract-key")
}
