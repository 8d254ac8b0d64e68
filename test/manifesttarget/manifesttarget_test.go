// Package manifesttarget holds the integration tests of ExternalSecrets
// whose spec.target.manifest names a ConfigMap or a custom resource
// (customresource_test.go; ESO's generic targets,
// served with --unsafe-allow-generic-targets). One control plane serves the
// package; each test runs its own operator, serving the test's namespace
// only, with or without the flag.
package manifesttarget

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{NoOperator: true}, &env))
}

// canary is the one value in examples/manifest-target that stands for a
// secret: it must reach the ConfigMap and nothing else.
const canary = "manifest-target-not-a-real-password"

// run starts an operator that serves ns only, with generic targets allowed
// or not, until the test ends, and returns its logs.
func run(t *testing.T, ns string, allowGenericTargets bool) *testenv.LogBuffer {
	t.Helper()
	logs := &testenv.LogBuffer{}
	testenv.StartOperator(t, env.Cluster.Config, operator.Options{
		Log: testenv.DebugLogger(logs), Namespace: ns, StartupSpread: time.Second,
		AllowGenericTargets:          allowGenericTargets,
		SkipControllerNameValidation: true,
	})
	return logs
}

func getConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	var cm corev1.ConfigMap
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cm)
	return &cm, err
}

// waitConfigMap waits until the ConfigMap exists and check accepts it.
func waitConfigMap(t *testing.T, ns, name string, check func(*corev1.ConfigMap) (bool, string)) *corev1.ConfigMap {
	t.Helper()
	var cm *corev1.ConfigMap
	testenv.Eventually(t, "ConfigMap "+ns+"/"+name, func(ctx context.Context) (bool, string) {
		var err error
		if cm, err = getConfigMap(ctx, ns, name); err != nil {
			return false, err.Error()
		}
		return check(cm)
	})
	return cm
}

func hasData(want map[string]string) func(*corev1.ConfigMap) (bool, string) {
	return func(cm *corev1.ConfigMap) (bool, string) {
		if len(cm.Data) != len(want) {
			return false, fmt.Sprintf("keys %v", keys(cm.Data))
		}
		for k, v := range want {
			if cm.Data[k] != v {
				return false, fmt.Sprintf("key %q differs", k)
			}
		}
		return true, ""
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// assertNoLeak fails when the canary appears in the operator's logs, the
// Events about the ExternalSecret or its status.
func assertNoLeak(t *testing.T, logs *testenv.LogBuffer, ns, name string) {
	t.Helper()
	if strings.Contains(logs.String(), canary) {
		t.Fatal("the canary value appeared in the operator's logs")
	}
	evs, err := env.Events(context.Background(), ns, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if strings.Contains(ev.Note, canary) {
			t.Fatalf("the canary value appeared in Event %s", ev.Reason)
		}
	}
	es := &esv1.ExternalSecret{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, es); err != nil {
		t.Fatal(err)
	}
	for _, c := range es.Status.Conditions {
		if strings.Contains(c.Message, canary) {
			t.Fatal("the canary value appeared in the status")
		}
	}
}

// waitEvent waits for an Event with reason about the object whose note
// contains the text given.
func waitEvent(t *testing.T, ns, name, reason, contains string) {
	t.Helper()
	testenv.Eventually(t, "Event "+reason, func(ctx context.Context) (bool, string) {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs {
			if ev.Reason == reason && strings.Contains(ev.Note, contains) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d Events, none %s", len(evs), reason)
	})
}

func TestConfigMapTargetIsRefusedWithoutTheFlag(t *testing.T) {
	ns := env.Namespace(t)
	logs := run(t, ns, false)
	env.Apply(t, ns, "examples/manifest-target/00-store.yaml")
	env.Apply(t, ns, "examples/manifest-target/manifest-basic-configmap.yaml")
	es := env.WaitReady(t, ns, "application-config", metav1.ConditionFalse, engine.ReasonGenericTargetsDisabled)
	if c := testenv.ReadyCondition(es); !strings.Contains(c.Message, "--unsafe-allow-generic-targets") {
		t.Errorf("message does not name the flag: %s", c.Message)
	}
	waitEvent(t, ns, "application-config", engine.ReasonGenericTargetsDisabled, "--unsafe-allow-generic-targets")
	if _, err := getConfigMap(context.Background(), ns, "app-config"); !apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap app-config: err = %v, want NotFound", err)
	}
	var secret corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app-config"}, &secret); !apierrors.IsNotFound(err) {
		t.Errorf("a Secret app-config was written instead: err = %v", err)
	}
	assertNoLeak(t, logs, ns, "application-config")
}

func TestESOConfigMapExamplesSync(t *testing.T) {
	ns := env.Namespace(t)
	logs := run(t, ns, true)
	env.Apply(t, ns, "examples/manifest-target")

	basic := env.WaitReady(t, ns, "application-config", metav1.ConditionTrue, externalsecret.ReasonResourceSynced)
	cm := waitConfigMap(t, ns, "app-config", hasData(map[string]string{
		"database-host": "db.example.internal",
		"api-endpoint":  "https://api.example.internal/v2",
	}))
	if cm.Labels[engine.LabelManaged] != engine.LabelManagedValue {
		t.Errorf("managed label missing: %v", cm.Labels)
	}
	if ref := metav1.GetControllerOf(cm); ref == nil || ref.UID != basic.UID || ref.Kind != "ExternalSecret" {
		t.Errorf("app-config is not controlled by its ExternalSecret: %v", cm.OwnerReferences)
	}
	if cm.Annotations[engine.AnnotationDataHash] == "" {
		t.Errorf("no data hash: %v", cm.Annotations)
	}
	if basic.Status.Binding.Name != "app-config" {
		t.Errorf("binding = %q", basic.Status.Binding.Name)
	}
	var secret corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app-config"}, &secret); !apierrors.IsNotFound(err) {
		t.Errorf("a Secret app-config was written too: err = %v", err)
	}

	env.WaitReady(t, ns, "templated-config", metav1.ConditionTrue, externalsecret.ReasonResourceSynced)
	waitConfigMap(t, ns, "database-config", hasData(map[string]string{
		"database.yaml": "host: pg.example.internal\nport: 5432\ndatabase: orders\n" +
			`connection_string: "postgresql://user:` + canary + `@pg.example.internal:5432/orders"` + "\n",
	}))

	env.WaitReady(t, ns, "labeled-config", metav1.ConditionTrue, externalsecret.ReasonResourceSynced)
	labeled := waitConfigMap(t, ns, "labeled-configmap", func(cm *corev1.ConfigMap) (bool, string) {
		return strings.Contains(cm.Data["config.json"], `"new_ui": true`) && strings.Contains(cm.Data["config.json"], `"beta_api": false`), "config.json not rendered"
	})
	if labeled.Labels["app"] != "myapp" || labeled.Labels["environment"] != "production" || labeled.Labels[engine.LabelManaged] != "true" {
		t.Errorf("labels = %v", labeled.Labels)
	}
	if labeled.Annotations["description"] != "Managed by External Secrets Operator" {
		t.Errorf("annotations = %v", labeled.Annotations)
	}
	waitEvent(t, ns, "application-config", externalsecret.EventCreated, "Created ConfigMap app-config")
	for _, name := range []string{"application-config", "templated-config", "labeled-config"} {
		assertNoLeak(t, logs, ns, name)
	}
}

// configMapES is an ExternalSecret that writes ConfigMap target from the
// store's key k; extra is appended to its target.
func configMapES(name, target, extra string) string {
	return fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: %s
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  target:
    name: %s
    manifest: {apiVersion: v1, kind: ConfigMap}
%s  data:
    - secretKey: k
      remoteRef: {key: k}
`, name, target, extra)
}

func store(value string) string {
	return fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: store
spec:
  provider:
    fake:
      data:
        - {key: k, value: %q}
        - {key: bin, value: "//79"}
`, value)
}

func TestConfigMapIsUpdatedRestoredAndNeverRewrittenForNothing(t *testing.T) {
	ns := env.Namespace(t)
	run(t, ns, true)
	env.Apply(t, ns, store("v1"))
	env.Apply(t, ns, configMapES("app", "app", ""))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, externalsecret.ReasonResourceSynced)
	cm := waitConfigMap(t, ns, "app", hasData(map[string]string{"k": "v1"}))

	t.Run("nothing is written when nothing changed", func(t *testing.T) {
		env.ForceSync(t, ns, "app")
		testenv.Eventually(t, "force-sync done", func(ctx context.Context) (bool, string) {
			var es esv1.ExternalSecret
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &es); err != nil {
				return false, err.Error()
			}
			return es.Status.SyncedResourceVersion == externalsecret.Version(&es), es.Status.SyncedResourceVersion
		})
		now, err := getConfigMap(context.Background(), ns, "app")
		if err != nil {
			t.Fatal(err)
		}
		if now.ResourceVersion != cm.ResourceVersion {
			t.Errorf("ConfigMap rewritten: resourceVersion %s -> %s", cm.ResourceVersion, now.ResourceVersion)
		}
	})

	t.Run("an edit is restored", func(t *testing.T) {
		edited := cm.DeepCopy()
		edited.Data["k"] = "tampered"
		edited.Data["extra"] = "x"
		if err := env.Client.Update(context.Background(), edited); err != nil {
			t.Fatal(err)
		}
		waitConfigMap(t, ns, "app", hasData(map[string]string{"k": "v1"}))
	})

	t.Run("a deleted ConfigMap is recreated", func(t *testing.T) {
		gone, err := getConfigMap(context.Background(), ns, "app")
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Delete(context.Background(), gone); err != nil {
			t.Fatal(err)
		}
		waitConfigMap(t, ns, "app", func(cm *corev1.ConfigMap) (bool, string) {
			return cm.UID != gone.UID && cm.Data["k"] == "v1", "not recreated yet"
		})
	})

	t.Run("a changed value is written", func(t *testing.T) {
		env.Apply(t, ns, store("v2"))
		waitConfigMap(t, ns, "app", hasData(map[string]string{"k": "v2"}))
	})

	t.Run("a failing provider keeps the ConfigMap", func(t *testing.T) {
		env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: store
spec:
  provider:
    fake:
      data:
        - {key: other, value: x}
`)
		env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonRemoteNotFound)
		now, err := getConfigMap(context.Background(), ns, "app")
		if err != nil {
			t.Fatal(err)
		}
		if now.Data["k"] != "v2" {
			t.Errorf("ConfigMap data = %v after a failed fetch", keys(now.Data))
		}
	})
}

func TestConfigMapTargetValuesThatAreNotUTF8GoToBinaryData(t *testing.T) {
	ns := env.Namespace(t)
	run(t, ns, true)
	env.Apply(t, ns, store("text"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: mixed
spec:
  secretStoreRef: {name: store}
  target:
    manifest: {apiVersion: v1, kind: ConfigMap}
  data:
    - secretKey: text
      remoteRef: {key: k}
    - secretKey: raw
      remoteRef: {key: bin, decodingStrategy: Base64}
`)
	env.WaitReady(t, ns, "mixed", metav1.ConditionTrue, externalsecret.ReasonResourceSynced)
	cm := waitConfigMap(t, ns, "mixed", hasData(map[string]string{"text": "text"}))
	if got := cm.BinaryData["raw"]; string(got) != "\xff\xfe\xfd" {
		t.Errorf("binaryData raw = %x, want fffefd", got)
	}
}

func TestConfigMapTargetNeverTakesOverAnUnownedConfigMap(t *testing.T) {
	ns := env.Namespace(t)
	run(t, ns, true)
	theirs := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "theirs"},
		Data:       map[string]string{"keep": "me"},
	}
	if err := env.Client.Create(context.Background(), theirs); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, store("v1"))
	env.Apply(t, ns, configMapES("app", "theirs", ""))
	es := env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonSecretNotOwned)
	if c := testenv.ReadyCondition(es); !strings.Contains(c.Message, `ConfigMap "theirs"`) {
		t.Errorf("message = %s", c.Message)
	}
	waitEvent(t, ns, "app", engine.ReasonSecretNotOwned, "keyferry.io/adopt")
	now, err := getConfigMap(context.Background(), ns, "theirs")
	if err != nil {
		t.Fatal(err)
	}
	if now.ResourceVersion != theirs.ResourceVersion {
		t.Fatalf("the unowned ConfigMap was written: %v", now.Data)
	}

	// Adoption: the annotation naming the ExternalSecret lets it write;
	// the change alone wakes the refused ExternalSecret.
	patch := client.MergeFrom(now.DeepCopy())
	now.Annotations = map[string]string{engine.AnnotationAdopt: "ExternalSecret/app"}
	if err := env.Client.Patch(context.Background(), now, patch); err != nil {
		t.Fatal(err)
	}
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, externalsecret.ReasonResourceSynced)
	adopted := waitConfigMap(t, ns, "theirs", hasData(map[string]string{"k": "v1"}))
	if _, ok := adopted.Annotations[engine.AnnotationAdopt]; ok {
		t.Errorf("adopt annotation kept: %v", adopted.Annotations)
	}
	if ref := metav1.GetControllerOf(adopted); ref == nil || ref.Name != "app" {
		t.Errorf("adopted ConfigMap has no controller reference to app: %v", adopted.OwnerReferences)
	}
}

func TestConfigMapTargetOrphanIsMarkedByAnnotation(t *testing.T) {
	ns := env.Namespace(t)
	run(t, ns, true)
	env.Apply(t, ns, store("v1"))
	env.Apply(t, ns, configMapES("app", "orphan", "    creationPolicy: Orphan\n"))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, externalsecret.ReasonResourceSynced)
	cm := waitConfigMap(t, ns, "orphan", hasData(map[string]string{"k": "v1"}))
	if len(cm.OwnerReferences) != 0 || cm.Annotations[engine.AnnotationOwner] != "ExternalSecret/app" {
		t.Errorf("ownerReferences %v, annotations %v", cm.OwnerReferences, cm.Annotations)
	}
}

func TestConfigMapTargetIsDeletedWhenEveryRemoteValueIsGoneUnderDeletionPolicyDelete(t *testing.T) {
	ns := env.Namespace(t)
	run(t, ns, true)
	env.Apply(t, ns, store("v1"))
	env.Apply(t, ns, configMapES("app", "app", "    deletionPolicy: Delete\n"))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, externalsecret.ReasonResourceSynced)
	waitConfigMap(t, ns, "app", hasData(map[string]string{"k": "v1"}))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: store
spec:
  provider:
    fake:
      data:
        - {key: other, value: x}
`)
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, externalsecret.ReasonResourceDeleted)
	testenv.Eventually(t, "ConfigMap deleted", func(ctx context.Context) (bool, string) {
		_, err := getConfigMap(ctx, ns, "app")
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	waitEvent(t, ns, "app", externalsecret.EventDeleted, "Deleted ConfigMap app")
}

// TestConfigMapESOCreatedIsTakenOverWithoutARewrite: a ConfigMap that ESO
// wrote for the same ExternalSecret (creationPolicy Owner: ESO's controller
// ownerReference, managed label, created-by label and data hash) with the
// values keyferry would write is kept as it is when keyferry replaces ESO.
func TestConfigMapESOCreatedIsTakenOverWithoutARewrite(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, store("v1"))
	env.Apply(t, ns, configMapES("app", "app", ""))
	var es esv1.ExternalSecret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, &es); err != nil {
		t.Fatal(err)
	}
	byESO := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app",
			Labels:      map[string]string{engine.LabelManaged: "true", "reconcile.external-secrets.io/created-by": "0123456789abcdef"},
			Annotations: map[string]string{engine.AnnotationDataHash: "eso-hash"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Name: "app", UID: es.UID,
				Controller: ptr(true), BlockOwnerDeletion: ptr(true)}},
		},
		Data: map[string]string{"k": "v1"},
	}
	if err := env.Client.Create(context.Background(), byESO); err != nil {
		t.Fatal(err)
	}
	run(t, ns, true)
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, externalsecret.ReasonResourceSynced)
	now, err := getConfigMap(context.Background(), ns, "app")
	if err != nil {
		t.Fatal(err)
	}
	if now.ResourceVersion != byESO.ResourceVersion {
		t.Errorf("ESO's ConfigMap was rewritten: annotations %v, labels %v", now.Annotations, now.Labels)
	}
}

func ptr[T any](v T) *T { return &v }
