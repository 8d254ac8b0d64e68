package test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

func TestQuickstartExampleSyncs(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, "examples/quickstart")
	es := env.WaitReady(t, ns, "database", metav1.ConditionTrue, "SecretSynced")
	s := env.WaitSecret(t, ns, "database-credentials", testenv.HasData(map[string]string{
		"username": "app",
		"password": "quickstart-not-a-real-password",
		"url":      "postgres://app:quickstart-not-a-real-password@db.demo.svc:5432/app",
	}))
	if s.Labels["app.kubernetes.io/part-of"] != "quickstart" {
		t.Errorf("template label missing: %v", s.Labels)
	}
	if s.Labels[engine.LabelManaged] != "true" {
		t.Errorf("managed label missing: %v", s.Labels)
	}
	if ref := metav1.GetControllerOf(s); ref == nil || ref.UID != es.UID {
		t.Errorf("Secret is not controlled by the ExternalSecret: %v", s.OwnerReferences)
	}
	if es.Status.Binding.Name != "database-credentials" || es.Status.RefreshTime.IsZero() || !strings.HasPrefix(es.Status.SyncedResourceVersion, "1-") {
		t.Errorf("status = %+v", es.Status)
	}
	env.AssertNoLeak(t, "quickstart-not-a-real-password")
	assertNoLeakInObject(t, ns, "database", "quickstart-not-a-real-password")
}

func TestESOAzureBlogExampleProducesDockerConfigJSON(t *testing.T) {
	env.Apply(t, "", "examples/eso-azure-blog-fake")
	env.WaitReady(t, "jenkins", "regcred", metav1.ConditionTrue, "SecretSynced")
	s := env.WaitSecret(t, "jenkins", "regcred", func(s *corev1.Secret) (bool, string) { return len(s.Data) > 0, "no data" })
	if s.Type != corev1.SecretTypeDockerConfigJson {
		t.Fatalf("type = %s, want %s", s.Type, corev1.SecretTypeDockerConfigJson)
	}
	var cfg struct {
		Auths map[string]struct{ Username, Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
		t.Fatalf(".dockerconfigjson is not JSON: %v", err)
	}
	if cfg.Auths["registry.example.com"].Username != "robot" {
		t.Fatalf("unexpected docker config: %+v", cfg)
	}
}

func TestUnsupportedProviderIsReportedNotSilentlyDropped(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: oracle
spec:
  provider:
    oracle:
      vault: ocid1.vault.oc1..example
      region: us-ashburn-1
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: from-oracle
spec:
  secretStoreRef: {name: oracle}
  data:
    - secretKey: k
      remoteRef: {key: some-key}
`)
	testenv.Eventually(t, "store Ready=False UnsupportedProvider", func(ctx context.Context) (bool, string) {
		var st esv1.SecretStore
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "oracle"}, &st); err != nil {
			return false, err.Error()
		}
		// the provider's own fields are kept, not pruned
		if st.Spec.Provider.Oracle == nil {
			return false, "spec.provider.oracle was pruned"
		}
		for _, c := range st.Status.Conditions {
			if c.Type == esv1.SecretStoreReady {
				return c.Status == metav1.ConditionFalse && c.Reason == esv1.ReasonUnsupportedProvider && strings.Contains(c.Message, `"oracle"`), c.Reason + ": " + c.Message
			}
		}
		return false, "no condition"
	})
	env.WaitReady(t, ns, "from-oracle", metav1.ConditionFalse, engine.ReasonUnsupportedProvider)
}

func TestClusterSecretStoreConditionsRefuseOtherNamespaces(t *testing.T) {
	allowed := env.Namespace(t, "team", "payments")
	denied := env.Namespace(t, "team", "other")
	env.Apply(t, "", fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: payments-only-%[1]s
spec:
  conditions:
    - namespaceSelector:
        matchLabels: {team: payments}
    - namespaceRegexes: ["^never-.*$"]
  provider:
    fake:
      data: [{key: k, value: v}]
`, allowed))
	es := fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: es
spec:
  secretStoreRef: {name: payments-only-%s, kind: ClusterSecretStore}
  data: [{secretKey: k, remoteRef: {key: k}}]
`, allowed)
	env.Apply(t, allowed, es)
	env.Apply(t, denied, es)
	env.WaitReady(t, allowed, "es", metav1.ConditionTrue, "SecretSynced")
	got := env.WaitReady(t, denied, "es", metav1.ConditionFalse, engine.ReasonStoreNotAllowed)
	if !strings.Contains(testenv.ReadyCondition(got).Message, denied) {
		t.Errorf("message does not name the namespace: %s", testenv.ReadyCondition(got).Message)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: denied, Name: "es"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a Secret was written in the disallowed namespace (err=%v)", err)
	}
	testenv.Eventually(t, "a Warning Event for the refusal", func(ctx context.Context) (bool, string) {
		evs, _ := env.Events(ctx, denied, "es")
		for _, ev := range evs {
			if ev.Type == corev1.EventTypeWarning && ev.Reason == engine.ReasonStoreNotAllowed {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(evs))
	})
}

func TestOwnerNeverTakesOverAnUnownedSecret(t *testing.T) {
	ns := env.Namespace(t)
	existing := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, StringData: map[string]string{"precious": "keep-me"}}
	if err := env.Client.Create(context.Background(), existing); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, fakeStore("store", "k", "new"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  secretStoreRef: {name: store}
  data: [{secretKey: k, remoteRef: {key: k}}]
`)
	es := env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonSecretNotOwned)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, engine.AnnotationAdopt) {
		t.Errorf("message does not say how to adopt: %s", msg)
	}
	s := env.GetSecret(t, ns, "app")
	if string(s.Data["precious"]) != "keep-me" || len(s.Data) != 1 || s.ResourceVersion != existing.ResourceVersion {
		t.Fatalf("the unowned Secret was modified: keys %v", keys(s.Data))
	}

	// Marking the Secret for adoption by this ExternalSecret lets it take over.
	s.Annotations = map[string]string{engine.AnnotationAdopt: "ExternalSecret/app"}
	if err := env.Client.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	// the adoption annotation is a change to an unmanaged Secret; nudge the ExternalSecret
	env.ForceSync(t, ns, "app")
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, "SecretSynced")
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"k": "new"}))
}

func TestMergeTouchesOnlyItsOwnKeys(t *testing.T) {
	ns := env.Namespace(t)
	if err := env.Client.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shared"}, StringData: map[string]string{"theirs": "untouched"}}); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, fakeStore("store", "a", "1", "b", "2"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: merger
spec:
  refreshInterval: 0s
  secretStoreRef: {name: store}
  target: {name: shared, creationPolicy: Merge}
  data:
    - {secretKey: a, remoteRef: {key: a}}
    - {secretKey: b, remoteRef: {key: b}}
`)
	env.WaitReady(t, ns, "merger", metav1.ConditionTrue, "SecretSynced")
	env.WaitSecret(t, ns, "shared", testenv.HasData(map[string]string{"theirs": "untouched", "a": "1", "b": "2"}))
	// Dropping key b from the spec removes only b.
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: merger
spec:
  refreshInterval: 0s
  secretStoreRef: {name: store}
  target: {name: shared, creationPolicy: Merge}
  data:
    - {secretKey: a, remoteRef: {key: a}}
`)
	env.WaitSecret(t, ns, "shared", func(s *corev1.Secret) (bool, string) {
		_, hasB := s.Data["b"]
		return !hasB && string(s.Data["theirs"]) == "untouched" && string(s.Data["a"]) == "1", fmt.Sprintf("keys %v", keys(s.Data))
	})
	if ref := metav1.GetControllerOf(env.GetSecret(t, ns, "shared")); ref != nil {
		t.Errorf("Merge set an ownerReference on a Secret it does not own: %v", ref)
	}
}

func TestMergeNeverCreates(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "a", "1"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: merger
spec:
  secretStoreRef: {name: store}
  target: {creationPolicy: Merge}
  data: [{secretKey: a, remoteRef: {key: a}}]
`)
	env.WaitReady(t, ns, "merger", metav1.ConditionFalse, engine.ReasonSecretMissing)
}

func TestProviderFailureKeepsTheExistingSecret(t *testing.T) {
	const canary = "CANARY-7d1e-old-value"
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "db", `{"password":"`+canary+`"}`))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1s
  secretStoreRef: {name: store}
  data: [{secretKey: password, remoteRef: {key: db, property: password}}]
`)
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, "SecretSynced")
	before := env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"password": canary}))

	// The remote key disappears: with deletionPolicy Retain (the default)
	// that is an error, and the Secret keeps its value.
	env.Apply(t, ns, fakeStore("store", "other", "x"))
	es := env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonRemoteNotFound)
	if !strings.Contains(testenv.ReadyCondition(es).Message, "db") {
		t.Errorf("message does not name the key: %s", testenv.ReadyCondition(es).Message)
	}
	after := env.GetSecret(t, ns, "app")
	if string(after.Data["password"]) != canary || after.ResourceVersion != before.ResourceVersion {
		t.Fatal("the Secret changed after a failed fetch")
	}
	// The property disappears: also an error that keeps the value.
	env.Apply(t, ns, fakeStore("store", "db", `{"user":"u"}`))
	env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonPropertyNotFound)
	if got := env.GetSecret(t, ns, "app"); got.ResourceVersion != before.ResourceVersion {
		t.Fatal("the Secret changed after a failed property lookup")
	}
	env.AssertNoLeak(t, canary)
	assertNoLeakInObject(t, ns, "app", canary)
}

func TestDeletionPolicyDeleteRemovesTheSecretWhenTheRemoteIsGone(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "k", "v"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1s
  secretStoreRef: {name: store}
  target: {deletionPolicy: Delete}
  data: [{secretKey: k, remoteRef: {key: k}}]
`)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"k": "v"}))
	env.Apply(t, ns, fakeStore("store", "unrelated", "x"))
	testenv.Eventually(t, "the Secret to be deleted", func(ctx context.Context) (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &corev1.Secret{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, "SecretDeleted")
}

func TestNothingIsWrittenWhenNothingChanged(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "k", "v"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1s
  secretStoreRef: {name: store}
  data: [{secretKey: k, remoteRef: {key: k}}]
`)
	es := env.WaitReady(t, ns, "app", metav1.ConditionTrue, "SecretSynced")
	s := env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"k": "v"}))
	calls := env.Op.Fetch.Calls("SecretStore", ns, "store")
	// Wait until several refreshes have fetched again, then check that
	// neither the Secret nor the ExternalSecret was written.
	testenv.Eventually(t, "three more refreshes", func(ctx context.Context) (bool, string) {
		n := env.Op.Fetch.Calls("SecretStore", ns, "store")
		return n >= calls+3, fmt.Sprintf("%d calls", n)
	})
	if got := env.GetSecret(t, ns, "app"); got.ResourceVersion != s.ResourceVersion {
		t.Errorf("Secret was rewritten without a change (rv %s → %s)", s.ResourceVersion, got.ResourceVersion)
	}
	var now esv1.ExternalSecret
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(es), &now); err != nil {
		t.Fatal(err)
	}
	if now.ResourceVersion != es.ResourceVersion {
		t.Errorf("ExternalSecret status was rewritten without a change")
	}
}

func TestEditedSecretIsRestored(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "k", "v"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data: [{secretKey: k, remoteRef: {key: k}}]
`)
	s := env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"k": "v"}))
	s.Data["k"] = []byte("tampered")
	if err := env.Client.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"k": "v"}))
	if err := env.Client.Delete(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"k": "v"}))
}

func TestForceSyncAnnotationFetchesAtOnce(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "k", "v1"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data: [{secretKey: k, remoteRef: {key: k}}]
`)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"k": "v1"}))
	env.Apply(t, ns, fakeStore("store", "k", "v2"))
	env.ForceSync(t, ns, "app")
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"k": "v2"}))
}

func TestRefreshPolicyCreatedOnceNeverUpdates(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "k", "v1"))
	es := func(name, policy string) string {
		return fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: %s
spec:
  refreshPolicy: %s
  refreshInterval: 1s
  secretStoreRef: {name: store}
  data: [{secretKey: k, remoteRef: {key: k}}]
`, name, policy)
	}
	env.Apply(t, ns, es("once", "CreatedOnce"))
	env.Apply(t, ns, es("probe", "Periodic"))
	env.WaitSecret(t, ns, "once", testenv.HasData(map[string]string{"k": "v1"}))
	before := env.GetSecret(t, ns, "once")
	// The value changes; the Periodic probe on the same store picks it up,
	// which proves refreshes ran, while CreatedOnce keeps what it created.
	env.Apply(t, ns, fakeStore("store", "k", "v2"))
	env.WaitSecret(t, ns, "probe", testenv.HasData(map[string]string{"k": "v2"}))
	if got := env.GetSecret(t, ns, "once"); string(got.Data["k"]) != "v1" || got.ResourceVersion != before.ResourceVersion {
		t.Fatal("CreatedOnce updated the Secret")
	}
}

func TestDataFromExtractFindAndRewrite(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store",
		"/app/config", `{"host":"db","port":5432,"nested":{"a":"b"}}`,
		"/app/db-user", "alice",
		"/app/db-pass", "s3cret",
		"/other/x", "no"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  secretStoreRef: {name: store}
  dataFrom:
    - extract: {key: /app/config}
      rewrite:
        - regexp: {source: "^(.*)$", target: "cfg_$1"}
    - find:
        path: /app/
        name: {regexp: "db-"}
      rewrite:
        # rewrites see the remote names; conversion ("/" → "_") comes after
        - regexp: {source: "^/app/db-(.*)$", target: "db_$1"}
        - transform: {template: "{{ .value | upper }}"}
`)
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, "SecretSynced")
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{
		"cfg_host": "db", "cfg_port": "5432", "cfg_nested": `{"a":"b"}`,
		"DB_USER": "alice", "DB_PASS": "s3cret",
	}))
}

func TestTemplateFromConfigMap(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "user", "alice", "pass", "s3cret"))
	env.Apply(t, ns, `apiVersion: v1
kind: ConfigMap
metadata:
  name: tpl
data:
  config.yaml: |
    user: {{ .user }}
    password: {{ .pass }}
  labels: |
    owner: {{ .user }}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  secretStoreRef: {name: store}
  target:
    template:
      templateFrom:
        - configMap:
            name: tpl
            items: [{key: config.yaml}]
        - configMap:
            name: tpl
            items: [{key: labels, templateAs: KeysAndValues}]
          target: Labels
  data:
    - {secretKey: user, remoteRef: {key: user}}
    - {secretKey: pass, remoteRef: {key: pass}}
`)
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, "SecretSynced")
	s := env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"config.yaml": "user: alice\npassword: s3cret\n"}))
	if s.Labels["owner"] != "alice" {
		t.Errorf("templated label = %q", s.Labels["owner"])
	}
	if _, ok := s.Data["user"]; ok {
		t.Error("mergePolicy Replace kept the fetched keys")
	}
}

func TestInvalidSpecIsReportedWithTheField(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "k", "v"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: bad
spec:
  secretStoreRef: {name: store}
  dataFrom:
    - find:
        name: {regexp: "(unclosed"}
`)
	es := env.WaitReady(t, ns, "bad", metav1.ConditionFalse, engine.ReasonInvalidSpec)
	if !strings.Contains(testenv.ReadyCondition(es).Message, "spec.dataFrom[0].find.name.regexp") {
		t.Errorf("message does not name the field: %s", testenv.ReadyCondition(es).Message)
	}
}

func TestOwnedSecretIsGarbageCollectedWithItsExternalSecret(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "k", "v"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  secretStoreRef: {name: store}
  data: [{secretKey: k, remoteRef: {key: k}}]
`)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"k": "v"}))
	if err := env.Client.Delete(context.Background(), &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the owned Secret to be collected", func(ctx context.Context) (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &corev1.Secret{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// A Secret that ESO created for the same ExternalSecret (controller
// ownerReference, ESO's managed label, same content) is taken over without
// being rewritten.
func TestSecretCreatedByESOIsTakenOverWithoutARewrite(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "k", "v"))
	// The ExternalSecret exists before keyferry sees it sync: create it with
	// a store that does not exist yet, so nothing is written.
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: not-yet}
  data: [{secretKey: k, remoteRef: {key: k}}]
`)
	es := env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonStoreNotFound)
	esoSecret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: "app",
			Labels:      map[string]string{engine.LabelManaged: "true"},
			Annotations: map[string]string{engine.AnnotationDataHash: "hash-eso-computed"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret",
				Name: "app", UID: es.UID, Controller: ptr(true), BlockOwnerDeletion: ptr(true)}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"k": []byte("v")},
	}
	if err := env.Client.Create(context.Background(), esoSecret); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data: [{secretKey: k, remoteRef: {key: k}}]
`)
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, "SecretSynced")
	if got := env.GetSecret(t, ns, "app"); got.ResourceVersion != esoSecret.ResourceVersion {
		t.Fatalf("the ESO-created Secret was rewritten although nothing changed")
	}
}

func TestImmutableSecretIsNotModified(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("store", "k", "v1"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  target: {immutable: true}
  data: [{secretKey: k, remoteRef: {key: k}}]
`)
	s := env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"k": "v1"}))
	if s.Immutable == nil || !*s.Immutable {
		t.Fatal("Secret is not immutable")
	}
	env.Apply(t, ns, fakeStore("store", "k", "v2"))
	env.ForceSync(t, ns, "app")
	env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonSecretImmutable)
	if got := env.GetSecret(t, ns, "app"); string(got.Data["k"]) != "v1" {
		t.Fatal("immutable Secret changed")
	}
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
