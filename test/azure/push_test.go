package azure

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	"github.com/keyferry/keyferry/internal/manifest"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

// pushExampleDir holds ESO's Azure Key Vault PushSecret examples.
const pushExampleDir = "examples/pushsecret/azurekv"

// registerPushExampleCredentials registers the service principal of ESO's
// azure-secret-sp Secret (as the provider reads it: the client ID trimmed,
// the secret as it is, trailing newline and all) with the
// rights ESO's guide asks for a PushSecret: set, import and delete.
func registerPushExampleCredentials(t *testing.T) {
	t.Helper()
	objs, err := manifest.Read(filepath.Join(env.Root, pushExampleDir, "10-credentials.yaml"))
	if err != nil || len(objs) != 1 {
		t.Fatalf("reading 10-credentials.yaml: %d objects, %v", len(objs), err)
	}
	data, _, err := unstructuredStringMap(objs[0].Object, "data")
	if err != nil {
		t.Fatal(err)
	}
	id, err := base64.StdEncoding.DecodeString(data["ClientID"])
	if err != nil {
		t.Fatal(err)
	}
	secret, err := base64.StdEncoding.DecodeString(data["ClientSecret"])
	if err != nil {
		t.Fatal(err)
	}
	srv.AddApp(kvserver.App{ClientID: strings.TrimSpace(string(id)), ClientSecret: string(secret),
		Access: kvserver.ReadAll | kvserver.WriteAll})
}

// waitPushReady waits until the PushSecret's Ready condition has status
// and reason, and returns its message.
func waitPushReady(t *testing.T, ns, name string, status corev1.ConditionStatus, reason string) string {
	t.Helper()
	var msg string
	testenv.Eventually(t, fmt.Sprintf("PushSecret %s/%s Ready=%s %s", ns, name, status, reason), func(context.Context) (bool, string) {
		var ps esv1alpha1.PushSecret
		// Not the poll's context: at the deadline the last message must
		// still say what the PushSecret reports.
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &ps); err != nil {
			return false, err.Error()
		}
		for _, c := range ps.Status.Conditions {
			if c.Type == esv1alpha1.PushSecretReady {
				msg = c.Message
				return c.Status == status && c.Reason == reason, fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
			}
		}
		return false, "no Ready condition"
	})
	return msg
}

// deletePushSecrets deletes PushSecrets and waits until they are gone (their
// finalizer released).
func deletePushSecrets(t *testing.T, ns string, names ...string) {
	t.Helper()
	ctx := context.Background()
	for _, name := range names {
		if err := env.Client.Delete(ctx, &esv1alpha1.PushSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, "the PushSecrets deleted", func(ctx context.Context) (bool, string) {
		for _, name := range names {
			var ps esv1alpha1.PushSecret
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ps); !apierrors.IsNotFound(err) {
				return false, fmt.Sprintf("PushSecret %s still there (finalizers %v)", name, ps.Finalizers)
			}
		}
		return true, ""
	})
}

func setSourceData(t *testing.T, ns, name string, data map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	var s corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	s.Data = data
	if err := env.Client.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
}

// assertNoPushLeak fails when the canary appears in the operator's logs or
// in the Events or status of the PushSecrets named.
func assertNoPushLeak(t *testing.T, ns string, names ...string) {
	t.Helper()
	env.AssertNoLeak(t, canary)
	ctx := context.Background()
	for _, name := range names {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			t.Fatalf("listing Events of %s/%s: %v", ns, name, err)
		}
		for _, ev := range evs {
			if strings.Contains(ev.Note, canary) || strings.Contains(ev.Reason, canary) {
				t.Fatalf("a secret value appeared in Event %s of PushSecret %s/%s", ev.Reason, ns, name)
			}
		}
		var ps esv1alpha1.PushSecret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ps); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			t.Fatal(err)
		}
		b, err := json.Marshal(ps.Status)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), canary) {
			t.Fatalf("a secret value appeared in the status of PushSecret %s/%s", ns, name)
		}
	}
}

func rsaPKCS1(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// ESO's "Pushing to a Key" example, applied unchanged with ESO's
// Service Principal store: the RSA private key in source-key is imported
// as key my-azkv-key-name, tagged managed-by: external-secrets; a new key
// in the Secret is imported as a new version; deleting the PushSecret
// (deletionPolicy: Delete) deletes the key.
func TestPushESOKeyExampleImportsTheKey(t *testing.T) {
	const ns, name, keyName = "default", "pushsecret-example", "my-azkv-key-name"
	registerPushExampleCredentials(t)
	before := router.RequestsTo("kvtestpushsecret.vault.azure.net")
	env.Apply(t, ns, filepath.Join(pushExampleDir, "10-credentials.yaml"))
	env.Apply(t, ns, filepath.Join(pushExampleDir, "11-secretstore.yaml"))
	env.WaitStoreReady(t, ns, "azure-store")
	env.Apply(t, ns, filepath.Join(pushExampleDir, "20-pushsecret-key.yaml"))

	waitPushReady(t, ns, name, corev1.ConditionTrue, pushsecret.ReasonSynced)
	source := env.GetSecret(t, ns, "source-key")
	block, _ := pem.Decode(source.Data["tls.key"])
	if block == nil {
		t.Fatal("the example's tls.key is not PEM")
	}
	want, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("the example's tls.key: %v", err)
	}
	o, ok := srv.Object(kvserver.KindKey, keyName)
	if !ok {
		t.Fatalf("key %s was not imported", keyName)
	}
	if o.JWK["n"] != base64.RawURLEncoding.EncodeToString(want.N.Bytes()) || o.Tags[provider.ManagedByKey] != provider.ManagedByValue {
		t.Fatalf("key %s: tags %v; want the example's RSA key tagged managed-by: external-secrets", keyName, o.Tags)
	}
	if router.RequestsTo("kvtestpushsecret.vault.azure.net") == before {
		t.Fatal("no request went to the store's vault kvtestpushsecret.vault.azure.net")
	}

	next, nextPEM := rsaPKCS1(t)
	setSourceData(t, ns, "source-key", map[string][]byte{"tls.key": nextPEM})
	testenv.Eventually(t, "the new key imported", func(context.Context) (bool, string) {
		o, _ := srv.Object(kvserver.KindKey, keyName)
		return o.JWK["n"] == base64.RawURLEncoding.EncodeToString(next.N.Bytes()) && o.Versions == 2, fmt.Sprintf("%d versions", o.Versions)
	})

	deletePushSecrets(t, ns, name)
	if _, ok := srv.Object(kvserver.KindKey, keyName); ok || !srv.IsDeleted(kvserver.KindKey, keyName) {
		t.Fatal("deletionPolicy Delete did not delete the pushed key")
	}
}

// ESO's "Pushing to a Secret" example, applied unchanged: its
// data[0].metadata (ESO's PushSecretMetadata) lands on the secret
// my-azkv-secret-name: expiry 2024-12-31T23:59:59Z, content type
// application/json, tag environment: production beside keyferry's
// managed-by tag. A new source value is pushed as a new version carrying
// the same metadata; deleting the PushSecret (deletionPolicy: Delete)
// deletes the secret.
func TestPushESOSecretExamplePushesItsMetadata(t *testing.T) {
	const ns, name, secretName = "default", "pushsecret-example", "my-azkv-secret-name"
	registerPushExampleCredentials(t)
	env.Apply(t, ns, filepath.Join(pushExampleDir, "10-credentials.yaml"))
	env.Apply(t, ns, filepath.Join(pushExampleDir, "11-secretstore.yaml"))
	env.WaitStoreReady(t, ns, "azure-store")
	env.Apply(t, ns, filepath.Join(pushExampleDir, "30-pushsecret-secret.yaml"))
	waitPushReady(t, ns, name, corev1.ConditionTrue, pushsecret.ReasonSynced)

	expires := time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC)
	wantTags := map[string]string{"environment": "production", provider.ManagedByKey: provider.ManagedByValue}
	check := func(o kvserver.Object, value string) string {
		switch {
		case o.Value != value:
			return "the value is not the source's"
		case o.ContentType != "application/json":
			return fmt.Sprintf("contentType %q, want application/json", o.ContentType)
		case o.Expires == nil || !o.Expires.Equal(expires):
			return fmt.Sprintf("expires %v, want %v", o.Expires, expires)
		case !maps.Equal(o.Tags, wantTags):
			return fmt.Sprintf("tags %v, want %v", o.Tags, wantTags)
		}
		return ""
	}
	o, ok := srv.Object(kvserver.KindSecret, secretName)
	if !ok {
		t.Fatalf("secret %s was not pushed", secretName)
	}
	if msg := check(o, "my-secret"); msg != "" || o.Versions != 1 {
		t.Fatalf("secret %s (%d versions): %s", secretName, o.Versions, msg)
	}

	setSourceData(t, ns, "source-secret", map[string][]byte{"source-key": []byte("my-new-secret")})
	testenv.Eventually(t, "the new value pushed with the example's metadata", func(context.Context) (bool, string) {
		o, _ := srv.Object(kvserver.KindSecret, secretName)
		msg := check(o, "my-new-secret")
		return msg == "" && o.Versions == 2, fmt.Sprintf("%d versions: %s", o.Versions, msg)
	})

	deletePushSecrets(t, ns, name)
	if _, ok := srv.Object(kvserver.KindSecret, secretName); ok || !srv.IsDeleted(kvserver.KindSecret, secretName) {
		t.Fatal("deletionPolicy Delete did not delete the pushed secret")
	}
}

// Metadata keyferry cannot honour is refused where the user looks: a
// managed-by tag (keyferry sets it, as ESO) or an expiry on a key leave the
// PushSecret Ready=False InvalidPush naming the field, and nothing is
// written.
func TestPushRefusesMetadataItCannotHonour(t *testing.T) {
	ns := env.Namespace(t)
	_, store := servicePrincipalStore(t, "pusher", kvserver.ReadAll|kvserver.WriteAll)
	env.Apply(t, ns, store)
	env.WaitStoreReady(t, ns, "pusher")
	for _, tt := range []struct{ name, remoteKey, spec, field string }{
		{"tags", "tagged-" + ns, `tags: {managed-by: someone}`, "metadata.spec.tags"},
		{"expiry", "key/expiring-" + ns, `expirationDate: "2099-01-01T00:00:00Z"`, "metadata.spec.expirationDate"},
	} {
		env.Apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: src-%[1]s
stringData:
  k: v
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: push-%[1]s
spec:
  secretStoreRefs:
    - name: pusher
      kind: SecretStore
  selector:
    secret:
      name: src-%[1]s
  data:
    - match:
        secretKey: k
        remoteRef:
          remoteKey: %[2]s
      metadata:
        apiVersion: kubernetes.external-secrets.io/v1alpha1
        kind: PushSecretMetadata
        spec:
          %[3]s
`, tt.name, tt.remoteKey, tt.spec))
		msg := waitPushReady(t, ns, "push-"+tt.name, corev1.ConditionFalse, pushsecret.ReasonInvalidPush)
		if !strings.Contains(msg, tt.field) {
			t.Fatalf("Ready message %q does not name %s", msg, tt.field)
		}
	}
	if _, ok := srv.Object(kvserver.KindSecret, "tagged-"+ns); ok {
		t.Fatal("a refused push wrote the secret")
	}
	if _, ok := srv.Object(kvserver.KindKey, "expiring-"+ns); ok {
		t.Fatal("a refused push wrote the key")
	}
}

// A PushSecret of secrets through the operator: the value lands tagged, a
// property goes into an existing JSON secret (its other fields kept), a
// change of the source is pushed as a new version, a secret keyferry did
// not create is refused and left alone, and deletionPolicy: Delete deletes
// only what was pushed. No value reaches a log, an Event or a status.
func TestPushSecretsThroughTheOperator(t *testing.T) {
	ns := env.Namespace(t)
	_, store := servicePrincipalStore(t, "pusher", kvserver.ReadAll|kvserver.WriteAll)
	env.Apply(t, ns, store)
	env.WaitStoreReady(t, ns, "pusher")
	pushed, shared, foreign := "pushed-"+ns, "shared-"+ns, "foreign-"+ns
	user, theirs := "user-"+canary, "theirs-"+canary
	srv.SetSecret(shared, `{"user":"`+user+`"}`, kvserver.WithTags(map[string]string{provider.ManagedByKey: provider.ManagedByValue}))
	srv.SetSecret(foreign, theirs)
	pw1, pw2 := "pw1-"+canary, "pw2-"+canary
	env.Apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: %[1]s
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: db-push
spec:
  refreshInterval: 1h0m0s
  deletionPolicy: Delete
  secretStoreRefs:
    - name: pusher
      kind: SecretStore
  selector:
    secret:
      name: db
  data:
    - match:
        secretKey: password
        remoteRef:
          remoteKey: secret/%[2]s
    - match:
        secretKey: password
        remoteRef:
          remoteKey: %[3]s
          property: password
`, pw1, pushed, shared))

	waitPushReady(t, ns, "db-push", corev1.ConditionTrue, pushsecret.ReasonSynced)
	o, ok := srv.Object(kvserver.KindSecret, pushed)
	if !ok || o.Value != pw1 || o.Tags[provider.ManagedByKey] != provider.ManagedByValue {
		t.Fatalf("secret %s: exists %t, tags %v; want the pushed value tagged managed-by", pushed, ok, o.Tags)
	}
	sharedFields := func() map[string]string {
		o, _ := srv.Object(kvserver.KindSecret, shared)
		var m map[string]string
		_ = json.Unmarshal([]byte(o.Value), &m)
		return m
	}
	if f := sharedFields(); f["user"] != user || f["password"] != pw1 {
		t.Fatal("the property was not pushed into the JSON secret with its other field kept")
	}

	setSourceData(t, ns, "db", map[string][]byte{"password": []byte(pw2)})
	testenv.Eventually(t, "the update pushed", func(context.Context) (bool, string) {
		o, _ := srv.Object(kvserver.KindSecret, pushed)
		return o.Value == pw2 && o.Versions == 2 && sharedFields()["password"] == pw2, fmt.Sprintf("%d versions", o.Versions)
	})

	env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: to-foreign
spec:
  deletionPolicy: Delete
  secretStoreRefs:
    - name: pusher
      kind: SecretStore
  selector:
    secret:
      name: db
  data:
    - match:
        secretKey: password
        remoteRef:
          remoteKey: %s
`, foreign))
	waitPushReady(t, ns, "to-foreign", corev1.ConditionFalse, pushsecret.ReasonRemoteNotManaged)

	assertNoPushLeak(t, ns, "db-push", "to-foreign")
	deletePushSecrets(t, ns, "db-push", "to-foreign")
	if _, ok := srv.Object(kvserver.KindSecret, pushed); ok || !srv.IsDeleted(kvserver.KindSecret, pushed) {
		t.Fatalf("secret %s was not deleted with its PushSecret", pushed)
	}
	if f := sharedFields(); f["user"] != user || f["password"] != "" {
		t.Fatal("deleting the PushSecret did not remove only its property from the shared secret")
	}
	if o, ok := srv.Object(kvserver.KindSecret, foreign); !ok || o.Value != theirs || o.Versions != 1 {
		t.Fatal("the secret keyferry did not create was touched")
	}
	assertNoPushLeak(t, ns)
}
