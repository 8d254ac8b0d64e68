package secretsync_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	ssv1 "github.com/keyferry/keyferry/apis/secretsync/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/secretsync"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/azurekv"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

// canary is part of every value the tests put in the vault; it must never
// appear in a log line, a status or an Event.
const canary = "kf-canary-ss-41d7"

// The identity of examples/secretsync.
const (
	exampleNamespace = "my-namespace"
	exampleSA        = "my-service-account"
	exampleClientID  = "3b9e0f4c-6a1d-4f2e-9c7b-5d8a2e1f0c34"
	exampleTenantID  = "8d2f6c1a-0b4e-4a7d-b3c9-1e5f7a9d2b60"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{NoOperator: true}, &env))
}

// vault is a Key Vault + Entra ID test server that trusts the cluster's
// ServiceAccount tokens, with the examples' app registered.
type vault struct {
	*kvserver.Server
	issuer string
}

func newVault(t *testing.T) *vault {
	t.Helper()
	srv := kvserver.New(t, kvserver.Options{TenantID: exampleTenantID, VaultName: "my-kv"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v := &vault{Server: srv, issuer: srv.TrustKubernetesIssuer(ctx, t, env.Cluster.Config)}
	return v
}

// federate registers an app whose credentials are the tokens of the
// ServiceAccounts ns/sa.
func (v *vault) federate(clientID string, access kvserver.Access, serviceAccounts ...string) {
	app := kvserver.App{ClientID: clientID, Access: access}
	for _, sa := range serviceAccounts {
		app.Federated = append(app.Federated, kvserver.FederatedCredential{Issuer: v.issuer, Subject: "system:serviceaccount:" + sa})
	}
	v.AddApp(app)
}

// running is the operator, as operator.New assembles it, pointed at one
// test vault.
type running struct {
	logs *testenv.LogBuffer
}

// startOperator runs the operator with the real azurekv provider until the
// test ends, serving only namespace ns (so tests do not see each other's
// objects). Every vault name resolves to v.
func startOperator(t *testing.T, v *vault, ns string, poll time.Duration) *running {
	t.Helper()
	logs := &testenv.LogBuffer{}
	reg := provider.NewRegistry()
	reg.Register(azurekv.Name, azurekv.NewWithOptions(azurekv.Options{
		Transport:                            v.HTTPClient(),
		AuthorityHost:                        v.AuthorityHost(),
		DisableChallengeResourceVerification: true,
		LookupEnv:                            func(string) (string, bool) { return "", false },
		VaultURL:                             func(string, esv1.AzureEnvironmentType) (string, error) { return v.VaultURL(), nil },
	}))
	reg.RegisterClass(azurekv.ClassName, azurekv.Name)
	testenv.StartOperator(t, env.Cluster.Config, operator.Options{
		MetricsAddr: "0", HealthAddr: "0",
		Registry:                       reg,
		Namespace:                      ns,
		Concurrency:                    4,
		SecretSyncRotationPollInterval: poll,
		StartupSpread:                  time.Second,
		Log:                            testenv.DebugLogger(logs),
		SkipControllerNameValidation:   true,
	})
	op := &running{logs: logs}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operator log:\n%s", op.logs.String())
		}
	})
	return op
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func getSecretSync(ctx context.Context, ns, name string) (*ssv1.SecretSync, error) {
	var ss ssv1.SecretSync
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ss)
	return &ss, err
}

// waitCondition waits until the SecretSync's condition typ has reason.
func waitCondition(t *testing.T, ns, name, typ, reason string) *ssv1.SecretSync {
	t.Helper()
	var got *ssv1.SecretSync
	testenv.Eventually(t, fmt.Sprintf("SecretSync %s/%s condition %s reason %s", ns, name, typ, reason), func(ctx context.Context) (bool, string) {
		ss, err := getSecretSync(ctx, ns, name)
		if err != nil {
			return false, err.Error()
		}
		got = ss
		c := meta.FindStatusCondition(ss.Status.Conditions, typ)
		if c == nil {
			return false, fmt.Sprintf("conditions: %+v", ss.Status.Conditions)
		}
		return c.Reason == reason && c.ObservedGeneration == ss.Generation, fmt.Sprintf("condition %+v", *c)
	})
	return got
}

// waitData waits until the Secret holds want (exactly these keys).
func waitData(t *testing.T, ns, name string, want map[string]string) *corev1.Secret {
	t.Helper()
	var got corev1.Secret
	testenv.Eventually(t, fmt.Sprintf("Secret %s/%s to hold keys %v", ns, name, keysOf(want)), func(ctx context.Context) (bool, string) {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &got); err != nil {
			return false, err.Error()
		}
		if len(got.Data) != len(want) {
			return false, fmt.Sprintf("keys %v", keysOf(got.Data))
		}
		for k, v := range want {
			if string(got.Data[k]) != v {
				return false, fmt.Sprintf("key %s differs", k) // never print values
			}
		}
		return true, ""
	})
	return &got
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// assertNoLeak checks that the canary is in no log line, no SecretSync
// status and no Event of the namespace.
func assertNoLeak(t *testing.T, op *running, ns string) {
	t.Helper()
	if strings.Contains(op.logs.String(), canary) {
		t.Fatalf("a secret value appeared in the operator's logs")
	}
	ctx := ctxFor(t)
	var list ssv1.SecretSyncList
	if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatalf("listing SecretSyncs: %v", err)
	}
	for _, ss := range list.Items {
		b, _ := json.Marshal(ss.Status)
		if strings.Contains(string(b), canary) {
			t.Fatalf("a secret value appeared in the status of SecretSync %s", ss.Name)
		}
	}
	for _, ss := range list.Items {
		evs, err := env.Events(ctx, ns, ss.Name)
		if err != nil {
			t.Fatalf("listing events: %v", err)
		}
		for _, ev := range evs {
			if strings.Contains(ev.Note, canary) || strings.Contains(ev.Reason, canary) {
				t.Fatalf("a secret value appeared in an Event of SecretSync %s", ss.Name)
			}
		}
	}
}

// waitEvent waits for an Event about the object with the reason.
func waitEvent(t *testing.T, ns, name, eventType, reason string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("a %s Event %s about %s", eventType, reason, name), func(ctx context.Context) (bool, string) {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, ev := range evs {
			if ev.Type == eventType && ev.Reason == reason {
				return true, ""
			}
			seen = append(seen, ev.Type+"/"+ev.Reason)
		}
		return false, fmt.Sprintf("events: %v", seen)
	})
}

// The Secret Store extension's guide, applied as it is: a SecretProviderClass
// with objectVersionHistory 2 and a SecretSync mapping versions 0 and 1.
func TestSecretStoreExtensionExample(t *testing.T) {
	v := newVault(t)
	v.federate(exampleClientID, kvserver.SecretsGet|kvserver.SecretsList, exampleNamespace+":"+exampleSA)
	v1 := "Hello!-" + canary
	v2 := "Hello2-" + canary
	v.SetSecret("my-secret", v1)
	v.SetSecret("my-secret", v2)
	op := startOperator(t, v, exampleNamespace, time.Hour)

	env.Apply(t, "", "examples/secretsync")
	secret := waitData(t, exampleNamespace, "secret-sync-name", map[string]string{"my-secret-data-key0": v2, "my-secret-data-key1": v1})
	ss := waitCondition(t, exampleNamespace, "secret-sync-name", ssv1.ConditionTypeCreate, ssv1.ReasonCreateSucceeded)

	t.Run("the Secret is marked as the controller's", func(t *testing.T) {
		if secret.Type != corev1.SecretTypeOpaque {
			t.Fatalf("type %s", secret.Type)
		}
		if _, ok := secret.Labels[secretsync.LabelController]; !ok {
			t.Fatalf("labels %v lack %s", secret.Labels, secretsync.LabelController)
		}
		if _, ok := secret.Annotations[secretsync.AnnotationController]; !ok {
			t.Fatalf("annotations %v lack %s", secret.Annotations, secretsync.AnnotationController)
		}
		ref := metav1.GetControllerOf(secret)
		if ref == nil || ref.Kind != "SecretSync" || ref.Name != "secret-sync-name" || ref.UID != ss.UID || ref.APIVersion != "secret-sync.x-k8s.io/v1alpha1" {
			t.Fatalf("controller reference %+v", ref)
		}
	})
	t.Run("status reports the sync", func(t *testing.T) {
		if ss.Status.SyncHash == "" || ss.Status.LastSuccessfulSyncTime == nil {
			t.Fatalf("status %+v", ss.Status)
		}
		c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeCreate)
		if c.Status != metav1.ConditionTrue {
			t.Fatalf("condition %+v", *c)
		}
		waitEvent(t, exampleNamespace, "secret-sync-name", corev1.EventTypeNormal, ssv1.ReasonCreateSucceeded)
	})
	t.Run("forceSynchronization picks up a new version", func(t *testing.T) {
		v3 := "Hello3-" + canary
		v.SetSecret("my-secret", v3)
		before := ss.Status.SyncHash
		patchForce(t, exampleNamespace, "secret-sync-name", "rotate-1")
		waitData(t, exampleNamespace, "secret-sync-name", map[string]string{"my-secret-data-key0": v3, "my-secret-data-key1": v2})
		ss := waitCondition(t, exampleNamespace, "secret-sync-name", ssv1.ConditionTypeUpdate, ssv1.ReasonUpdateValueChangeOrForceUpdateSucceeded)
		if ss.Status.SyncHash == before {
			t.Fatalf("syncHash did not change")
		}
		if c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeCreate); c == nil || c.Reason != ssv1.ReasonCreateSucceeded {
			t.Fatalf("SecretCreated changed: %+v", c)
		}
	})
	t.Run("forceSynchronization without a change still reports a forced update", func(t *testing.T) {
		ss, _ := getSecretSync(ctxFor(t), exampleNamespace, "secret-sync-name")
		before := ss.Status.SyncHash
		patchForce(t, exampleNamespace, "secret-sync-name", "rotate-2")
		ss = waitCondition(t, exampleNamespace, "secret-sync-name", ssv1.ConditionTypeUpdate, ssv1.ReasonUpdateValueChangeOrForceUpdateSucceeded)
		if ss.Status.SyncHash == before {
			t.Fatalf("syncHash did not change with forceSynchronization")
		}
	})
	t.Run("a provider error keeps the Secret", func(t *testing.T) {
		before := waitData(t, exampleNamespace, "secret-sync-name", map[string]string{"my-secret-data-key0": "Hello3-" + canary, "my-secret-data-key1": v2})
		v.SetAccess(exampleClientID, kvserver.NoAccess)
		v.SetSecret("my-secret", "Hello4-"+canary)
		patchForce(t, exampleNamespace, "secret-sync-name", "rotate-3")
		ss := waitCondition(t, exampleNamespace, "secret-sync-name", ssv1.ConditionTypeUpdate, ssv1.ReasonUpdateFailedProviderError)
		if c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeUpdate); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "my-secret") {
			t.Fatalf("condition %+v", *c)
		}
		waitEvent(t, exampleNamespace, "secret-sync-name", corev1.EventTypeWarning, ssv1.ReasonUpdateFailedProviderError)
		var after corev1.Secret
		if err := env.Client.Get(ctxFor(t), client.ObjectKey{Namespace: exampleNamespace, Name: "secret-sync-name"}, &after); err != nil {
			t.Fatal(err)
		}
		if after.ResourceVersion != before.ResourceVersion {
			t.Fatalf("the Secret was written while the provider failed")
		}
		// Access back: the retry succeeds.
		v.SetAccess(exampleClientID, kvserver.SecretsGet|kvserver.SecretsList)
		waitData(t, exampleNamespace, "secret-sync-name", map[string]string{"my-secret-data-key0": "Hello4-" + canary, "my-secret-data-key1": "Hello3-" + canary})
		waitCondition(t, exampleNamespace, "secret-sync-name", ssv1.ConditionTypeUpdate, ssv1.ReasonUpdateValueChangeOrForceUpdateSucceeded)
	})
	t.Run("a deleted Secret is restored", func(t *testing.T) {
		ctx := ctxFor(t)
		if err := env.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: exampleNamespace, Name: "secret-sync-name"}}); err != nil {
			t.Fatal(err)
		}
		waitData(t, exampleNamespace, "secret-sync-name", map[string]string{"my-secret-data-key0": "Hello4-" + canary, "my-secret-data-key1": "Hello3-" + canary})
	})
	assertNoLeak(t, op, exampleNamespace)
}

func patchForce(t *testing.T, ns, name, value string) {
	t.Helper()
	ctx := ctxFor(t)
	ss, err := getSecretSync(ctx, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	next := ss.DeepCopy()
	next.Spec.ForceSynchronization = value
	if err := env.Client.Patch(ctx, next, client.MergeFrom(ss)); err != nil {
		t.Fatalf("setting forceSynchronization: %v", err)
	}
}

// syncManifests is the example's SecretProviderClass and SecretSync for
// namespace-local tests: the SecretSync name, Secret type and ServiceAccount
// vary.
func syncManifests(name, secretType, sa string, data ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: ServiceAccount
metadata:
  name: %[3]s
---
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: spc-%[1]s
spec:
  provider: azure
  parameters:
    clientID: "%[4]s"
    keyvaultName: my-kv
    objects: |
      array:
        - |
          objectName: my-secret
          objectType: secret
          objectVersionHistory: 2
        - |
          objectName: other
          objectType: secret
    tenantID: "%[5]s"
---
apiVersion: secret-sync.x-k8s.io/v1alpha1
kind: SecretSync
metadata:
  name: %[1]s
spec:
  serviceAccountName: %[3]s
  secretProviderClassName: spc-%[1]s
  secretObject:
    type: %[2]s
    data:
`, name, secretType, sa, exampleClientID, exampleTenantID)
	for i := 0; i+1 < len(data); i += 2 {
		fmt.Fprintf(&b, "    - sourcePath: %s\n      targetKey: %s\n", data[i], data[i+1])
	}
	return b.String()
}

// With the rotation poll interval, a new version reaches the Secret
// without anyone touching the SecretSync.
func TestRotationPollPicksUpNewVersions(t *testing.T) {
	v := newVault(t)
	ns := env.Namespace(t)
	v.federate(exampleClientID, kvserver.SecretsGet|kvserver.SecretsList, ns+":reader")
	v.SetSecret("my-secret", "one-"+canary)
	v.SetSecret("my-secret", "two-"+canary)
	op := startOperator(t, v, ns, 2*time.Second)

	env.Apply(t, ns, syncManifests("rotating", "Opaque", "reader", "my-secret/0", "current", "my-secret/1", "previous"))
	waitData(t, ns, "rotating", map[string]string{"current": "two-" + canary, "previous": "one-" + canary})
	waitCondition(t, ns, "rotating", ssv1.ConditionTypeCreate, ssv1.ReasonCreateSucceeded)
	// The next polls find nothing new.
	waitCondition(t, ns, "rotating", ssv1.ConditionTypeUpdate, ssv1.ReasonUpdateNoValueChangeSucceeded)

	v.SetSecret("my-secret", "three-"+canary)
	waitData(t, ns, "rotating", map[string]string{"current": "three-" + canary, "previous": "two-" + canary})
	waitCondition(t, ns, "rotating", ssv1.ConditionTypeUpdate, ssv1.ReasonUpdateValueChangeOrForceUpdateSucceeded)
	waitEvent(t, ns, "rotating", corev1.EventTypeNormal, ssv1.ReasonUpdateValueChangeOrForceUpdateSucceeded)
	assertNoLeak(t, op, ns)
}

// A Secret the SecretSync did not create is never touched: the SecretSync
// reports CreateFailedInvalidLabel (or ...InvalidAnnotation) and takes the
// name only once the Secret is gone.
func TestSecretNotCreatedBySecretSyncIsNeverTouched(t *testing.T) {
	v := newVault(t)
	ns := env.Namespace(t)
	v.federate(exampleClientID, kvserver.SecretsGet|kvserver.SecretsList, ns+":reader")
	v.SetSecret("my-secret", "value-"+canary)
	op := startOperator(t, v, ns, 2*time.Second)
	ctx := ctxFor(t)

	theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "theirs"}, StringData: map[string]string{"app": "keep me"}}
	if err := env.Client.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	labelled := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "labelled", Labels: map[string]string{secretsync.LabelController: ""}}, StringData: map[string]string{"app": "keep me"}}
	if err := env.Client.Create(ctx, labelled); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, syncManifests("theirs", "Opaque", "reader", "my-secret/0", "value"))
	env.Apply(t, ns, syncManifests("labelled", "Opaque", "reader", "my-secret/0", "value"))

	ss := waitCondition(t, ns, "theirs", ssv1.ConditionTypeCreate, ssv1.ReasonCreateFailedInvalidLabel)
	if c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeCreate); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, secretsync.LabelController) {
		t.Fatalf("condition %+v", *c)
	}
	waitEvent(t, ns, "theirs", corev1.EventTypeWarning, ssv1.ReasonCreateFailedInvalidLabel)
	waitCondition(t, ns, "labelled", ssv1.ConditionTypeCreate, ssv1.ReasonCreateFailedInvalidAnnotation)
	for _, name := range []string{"theirs", "labelled"} {
		var s corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
			t.Fatal(err)
		}
		if len(s.Data) != 1 || string(s.Data["app"]) != "keep me" || len(s.OwnerReferences) != 0 {
			t.Fatalf("Secret %s was modified: keys %v, owners %v", name, keysOf(s.Data), s.OwnerReferences)
		}
	}

	// Once the user deletes it, the SecretSync creates its own.
	if err := env.Client.Delete(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	waitData(t, ns, "theirs", map[string]string{"value": "value-" + canary})
	waitCondition(t, ns, "theirs", ssv1.ConditionTypeCreate, ssv1.ReasonCreateSucceeded)
	assertNoLeak(t, op, ns)
}

// A Secret the Secrets Store Sync Controller (or the Secret Store
// extension) wrote for the same SecretSync is taken over, not refused.
func TestSecretWrittenByTheSyncControllerIsTakenOver(t *testing.T) {
	v := newVault(t)
	ns := env.Namespace(t)
	v.federate(exampleClientID, kvserver.SecretsGet, ns+":reader")
	v.SetSecret("other", "new-"+canary)
	op := startOperator(t, v, ns, time.Hour)
	ctx := ctxFor(t)

	// The SecretSync first, without its class so that nothing is written
	// yet; then the Secret the previous controller wrote; then the class.
	docs := strings.Split(syncManifests("migrated", "Opaque", "reader", "other", "value"), "---\n")
	env.Apply(t, ns, docs[0]+"---\n"+docs[2])
	ss := waitCondition(t, ns, "migrated", ssv1.ConditionTypeCreate, ssv1.ReasonControllerSpcError)
	old := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: "migrated",
			Labels:          map[string]string{secretsync.LabelController: ""},
			Annotations:     map[string]string{secretsync.AnnotationController: ""},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "secret-sync.x-k8s.io/v1alpha1", Kind: "SecretSync", Name: "migrated", UID: ss.UID}},
		},
		StringData: map[string]string{"value": "old"},
	}
	if err := env.Client.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, docs[1])
	s := waitData(t, ns, "migrated", map[string]string{"value": "new-" + canary})
	if ref := metav1.GetControllerOf(s); ref == nil || ref.UID != ss.UID {
		t.Fatalf("owner references %+v", s.OwnerReferences)
	}
	if len(s.OwnerReferences) != 1 {
		t.Fatalf("owner references %+v, want one", s.OwnerReferences)
	}
	assertNoLeak(t, op, ns)
}

// Service account tokens are never written: the SecretSync reports
// UserInputValidationFailed and no Secret appears.
func TestServiceAccountTokenTypeIsRefused(t *testing.T) {
	v := newVault(t)
	ns := env.Namespace(t)
	v.federate(exampleClientID, kvserver.SecretsGet, ns+":reader")
	v.SetSecret("my-secret", "value-"+canary)
	op := startOperator(t, v, ns, time.Hour)

	env.Apply(t, ns, syncManifests("token", "kubernetes.io/service-account-token", "reader", "my-secret/0", "token"))
	ss := waitCondition(t, ns, "token", ssv1.ConditionTypeCreate, ssv1.ReasonUserInputValidationFailed)
	c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeCreate)
	if c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "kubernetes.io/service-account-token") {
		t.Fatalf("condition %+v", *c)
	}
	waitEvent(t, ns, "token", corev1.EventTypeWarning, ssv1.ReasonUserInputValidationFailed)
	var s corev1.Secret
	if err := env.Client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "token"}, &s); err == nil {
		t.Fatalf("a Secret was created")
	}
	if n := v.TotalVaultRequests(); n != 0 {
		t.Fatalf("%d vault requests for a SecretSync that cannot be synced", n)
	}
	assertNoLeak(t, op, ns)
}

// A missing SecretProviderClass, or one for another provider, is a
// ControllerSpcError; creating the class resumes the sync.
func TestSecretProviderClassErrors(t *testing.T) {
	v := newVault(t)
	ns := env.Namespace(t)
	v.federate(exampleClientID, kvserver.SecretsGet, ns+":reader")
	v.SetSecret("other", "value-"+canary)
	op := startOperator(t, v, ns, time.Hour)
	ctx := ctxFor(t)

	full := syncManifests("late", "Opaque", "reader", "other", "value")
	docs := strings.Split(full, "---\n")
	env.Apply(t, ns, docs[0]+"---\n"+docs[2]) // ServiceAccount and SecretSync only
	ss := waitCondition(t, ns, "late", ssv1.ConditionTypeCreate, ssv1.ReasonControllerSpcError)
	if c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeCreate); !strings.Contains(c.Message, `SecretProviderClass "spc-late" not found`) {
		t.Fatalf("condition %+v", *c)
	}
	waitEvent(t, ns, "late", corev1.EventTypeWarning, ssv1.ReasonControllerSpcError)
	env.Apply(t, ns, docs[1])
	waitData(t, ns, "late", map[string]string{"value": "value-" + canary})
	waitCondition(t, ns, "late", ssv1.ConditionTypeCreate, ssv1.ReasonCreateSucceeded)

	other := strings.Replace(syncManifests("gcp", "Opaque", "reader", "other", "value"), "provider: azure", "provider: gcp", 1)
	env.Apply(t, ns, other)
	ss = waitCondition(t, ns, "gcp", ssv1.ConditionTypeCreate, ssv1.ReasonControllerSpcError)
	if c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeCreate); !strings.Contains(c.Message, `uses provider "gcp"`) {
		t.Fatalf("condition %+v", *c)
	}
	var s corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gcp"}, &s); err == nil {
		t.Fatalf("a Secret was created for a gcp SecretProviderClass")
	}
	assertNoLeak(t, op, ns)
}

// Two SecretSyncs using one SecretProviderClass with different
// ServiceAccounts never share a client: the one whose ServiceAccount is not
// federated fails, the other succeeds.
func TestServiceAccountsDoNotShareClients(t *testing.T) {
	v := newVault(t)
	ns := env.Namespace(t)
	v.federate(exampleClientID, kvserver.SecretsGet, ns+":trusted")
	v.SetSecret("other", "value-"+canary)
	op := startOperator(t, v, ns, time.Hour)

	env.Apply(t, ns, syncManifests("trusted", "Opaque", "trusted", "other", "value"))
	waitData(t, ns, "trusted", map[string]string{"value": "value-" + canary})
	untrusted := strings.ReplaceAll(syncManifests("untrusted", "Opaque", "untrusted", "other", "value"), "spc-untrusted", "spc-trusted")
	docs := strings.Split(untrusted, "---\n")
	env.Apply(t, ns, docs[0]+"---\n"+docs[2])
	ss := waitCondition(t, ns, "untrusted", ssv1.ConditionTypeCreate, ssv1.ReasonCreateFailedProviderError)
	if c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeCreate); c.Status != metav1.ConditionFalse {
		t.Fatalf("condition %+v", *c)
	}
	var s corev1.Secret
	if err := env.Client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "untrusted"}, &s); err == nil {
		t.Fatalf("a Secret was created with another ServiceAccount's identity")
	}
	assertNoLeak(t, op, ns)
}

// Certificates, keys and certificate-backed secrets are written as the
// Azure provider writes them: the certificate and the public key in PEM, and
// for a kubernetes.io/tls Secret the certificate and private key of the
// certificate's secret.
func TestCertificatesAndKeys(t *testing.T) {
	v := newVault(t)
	ns := env.Namespace(t)
	v.federate(exampleClientID, kvserver.SecretsGet|kvserver.CertificatesGet|kvserver.KeysGet, ns+":reader")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "web.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	v.SetCertificate(t, "web-tls", cert, key)
	op := startOperator(t, v, ns, time.Hour)

	env.Apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: reader
---
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: web
spec:
  provider: azure
  parameters:
    clientID: %q
    keyvaultName: my-kv
    tenantID: %q
    objects: |
      array:
        - |
          objectName: web-tls
          objectType: secret
          objectAlias: bundle
        - |
          objectName: web-tls
          objectType: cert
          objectAlias: crt
        - |
          objectName: web-tls
          objectType: key
          objectAlias: pub
---
apiVersion: secret-sync.x-k8s.io/v1alpha1
kind: SecretSync
metadata:
  name: web-tls
spec:
  serviceAccountName: reader
  secretProviderClassName: web
  secretObject:
    type: kubernetes.io/tls
    data:
    - sourcePath: bundle
      targetKey: tls.crt
    - sourcePath: bundle
      targetKey: tls.key
---
apiVersion: secret-sync.x-k8s.io/v1alpha1
kind: SecretSync
metadata:
  name: web-public
spec:
  serviceAccountName: reader
  secretProviderClassName: web
  secretObject:
    data:
    - sourcePath: crt
      targetKey: cert.pem
    - sourcePath: pub
      targetKey: key.pem
`, exampleClientID, exampleTenantID))

	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	s := waitData(t, ns, "web-tls", map[string]string{
		"tls.crt": certPEM,
		"tls.key": string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
	})
	if s.Type != corev1.SecretTypeTLS {
		t.Fatalf("type %s", s.Type)
	}
	waitData(t, ns, "web-public", map[string]string{
		"cert.pem": certPEM,
		"key.pem":  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
	})
	waitCondition(t, ns, "web-tls", ssv1.ConditionTypeCreate, ssv1.ReasonCreateSucceeded)
	assertNoLeak(t, op, ns)
}
