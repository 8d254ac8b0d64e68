package providers

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// The GCP Secret Manager emulator ignores credentials: it cannot refuse a
// caller, so ProviderForbidden (and ProviderAuthFailed) are not tested here;
// internal/provider/gcpsm maps PERMISSION_DENIED and UNAUTHENTICATED.

const (
	gcpExampleDir = "examples/gcp"
	// gcpExampleProject is the project of ESO's example store.
	gcpExampleProject = "alphabet-123"
	// adcServiceAccount is the operator's default credentials' account.
	adcServiceAccount = "keyferry-operator@kf-adc.iam.gserviceaccount.com"
)

// ESO's example, applied as it is: the service account key Secret, the
// SecretStore that uses it and the ExternalSecret that reads
// dev-secret-test. Every request carries a JWT signed with the example's
// key.
func TestGCPExampleSignsWithTheServiceAccountKey(t *testing.T) {
	value := "dev-" + canary
	gcp.AddVersion(t, gcp.CreateSecret(t, "projects/"+gcpExampleProject, "dev-secret-test", nil), []byte(value))
	keyFile := exampleStringData(t, gcpExampleDir, "00-gcpsm-secret.yaml")["secret-access-credentials"]
	var sa struct {
		PrivateKey  string `json:"private_key"`
		ClientEmail string `json:"client_email"`
	}
	if err := json.Unmarshal([]byte(keyFile), &sa); err != nil {
		t.Fatalf("the example's key file is not JSON: %v", err)
	}
	key := parseRSAKey(t, sa.PrivateKey)
	secretMustNotLeak(keyMaterial(sa.PrivateKey))
	before := len(gcpFront.Authorizations())

	ns := env.Namespace(t)
	env.Apply(t, ns, gcpExampleDir)
	env.WaitStoreReady(t, ns, "example")
	env.WaitReady(t, ns, "example", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "secret-to-be-created", testenv.HasData(map[string]string{"dev-secret-test": value}))

	if !signedBy(t, gcpFront.Authorizations()[before:], &key.PublicKey, sa.ClientEmail) {
		t.Fatalf("no request carried a JWT of %s signed with the example's key", sa.ClientEmail)
	}
	assertNoLeak(t, ns, "example")
}

// A store without auth uses the operator's application default credentials
// (GOOGLE_APPLICATION_CREDENTIALS).
func TestGCPStoreWithoutAuthUsesDefaultCredentials(t *testing.T) {
	ns := env.Namespace(t)
	project := gcpProject(ns)
	gcp.AddVersion(t, gcp.CreateSecret(t, "projects/"+project, "db", nil), []byte("adc-"+canary))
	before := len(gcpFront.Authorizations())
	env.Apply(t, ns, gcpStore("store", project)+`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data: [{secretKey: value, remoteRef: {key: db}}]
`)
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "adc-" + canary}))
	if !signedBy(t, gcpFront.Authorizations()[before:], &adcKey.PublicKey, adcServiceAccount) {
		t.Fatalf("no request carried a JWT of %s signed with the default credentials' key", adcServiceAccount)
	}
	assertNoLeak(t, ns, "app")
}

// remoteRef.version reads that version; without it, the latest.
func TestGCPVersionSelectsAVersion(t *testing.T) {
	ns := env.Namespace(t)
	project := gcpProject(ns)
	name := gcp.CreateSecret(t, "projects/"+project, "api-key", nil)
	first := gcp.AddVersion(t, name, []byte("v1-"+canary))
	gcp.AddVersion(t, name, []byte("v2-"+canary))
	env.Apply(t, ns, gcpStore("store", project)+fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data:
  - secretKey: pinned
    remoteRef: {key: api-key, version: %q}
  - secretKey: current
    remoteRef: {key: api-key}
`, first))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"pinned": "v1-" + canary, "current": "v2-" + canary}))
	assertNoLeak(t, ns, "app")
}

// A new version reaches the Secret on the next refresh.
func TestGCPRotationReachesTheSecret(t *testing.T) {
	ns := env.Namespace(t)
	project := gcpProject(ns)
	name := gcp.CreateSecret(t, "projects/"+project, "rotating", nil)
	gcp.AddVersion(t, name, []byte("v1-"+canary))
	env.Apply(t, ns, gcpStore("store", project)+refreshingExternalSecret("app", "store", "rotating"))
	deleteOnCleanup(t, ns, "app")
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "v1-" + canary}))

	gcp.AddVersion(t, name, []byte("v2-"+canary))
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "v2-" + canary}))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	assertNoLeak(t, ns, "app")
}

// A deleted secret is RemoteSecretNotFound and the Secret keeps its value.
func TestGCPDeletedSecretIsNotFoundAndTheSecretStays(t *testing.T) {
	ns := env.Namespace(t)
	project := gcpProject(ns)
	name := gcp.CreateSecret(t, "projects/"+project, "doomed", nil)
	gcp.AddVersion(t, name, []byte("old-"+canary))
	env.Apply(t, ns, gcpStore("store", project)+refreshingExternalSecret("app", "store", "doomed"))
	deleteOnCleanup(t, ns, "app")
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	before := env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "old-" + canary}))

	if err := gcp.Client.DeleteSecret(context.Background(), &secretmanagerpb.DeleteSecretRequest{Name: name}); err != nil {
		t.Fatalf("deleting %s: %v", name, err)
	}
	es := env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonRemoteNotFound)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, "doomed") {
		t.Errorf("the message does not name the secret: %s", msg)
	}
	assertUnchanged(t, before)
	waitWarning(t, ns, "app", engine.ReasonRemoteNotFound)
	env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonRemoteNotFound)
	assertUnchanged(t, before)
	assertNoLeak(t, ns, "app")
}

// dataFrom.find with a name regexp and labels (ESO's tags) returns the
// latest value of every match, keyed by secret ID.
func TestGCPFindByLabelsAndName(t *testing.T) {
	ns := env.Namespace(t)
	project := gcpProject(ns)
	parent := "projects/" + project
	prod := map[string]string{"team": ns, "env": "prod"}
	for id, labels := range map[string]map[string]string{
		"app-a":     prod,
		"app-b":     prod,
		"other-c":   prod, // the name does not match
		"app-dev":   {"team": ns, "env": "dev"},
		"app-plain": nil,
	} {
		gcp.AddVersion(t, gcp.CreateSecret(t, parent, id, labels), []byte(id+"-"+canary))
	}
	gcp.CreateSecret(t, parent, "app-empty", prod) // no version: skipped
	env.Apply(t, ns, gcpStore("store", project)+fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  dataFrom:
  - find:
      name:
        regexp: "^app-"
      tags:
        team: %s
        env: prod
`, ns))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"app-a": "app-a-" + canary, "app-b": "app-b-" + canary}))
	assertNoLeak(t, ns, "app")
}

// --- GCP helpers ------------------------------------------------------------

// gcpProject is a project of the test's own, so listings see only its
// secrets.
func gcpProject(ns string) string { return "kf-" + ns }

// gcpStore is a SecretStore of project without auth: the operator's
// default credentials.
func gcpStore(name, project string) string {
	return fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: %s
spec:
  provider:
    gcpsm:
      projectID: %s
`, name, project)
}

func parseRSAKey(t *testing.T, pemKey string) *rsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode([]byte(pemKey))
	if block == nil {
		t.Fatal("the key file's private_key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("the key file's private_key: %v", err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("the key file's private_key is a %T, not RSA", k)
	}
	return key
}

// keyMaterial is a stretch of a PEM key's base64 body: it must never be
// logged.
func keyMaterial(pemKey string) string {
	lines := strings.Split(pemKey, "\n")
	if len(lines) < 3 {
		return pemKey
	}
	return lines[2]
}

// signedBy says whether one of the authorization headers is a bearer JWT
// signed (RS256) by pub and issued by email.
func signedBy(t *testing.T, authorizations []string, pub *rsa.PublicKey, email string) bool {
	t.Helper()
	for _, a := range authorizations {
		token, ok := strings.CutPrefix(a, "Bearer ")
		if !ok {
			continue
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			continue
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			continue
		}
		sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
			continue
		}
		if iss := jwtClaims(t, token)["iss"]; iss == email {
			return true
		}
	}
	return false
}
