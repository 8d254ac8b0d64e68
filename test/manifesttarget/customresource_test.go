package manifesttarget

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// The custom resources ESO's examples write: an AppConfig of a made-up
// group and Argo CD's Application, each served by a CRD that keeps every
// field (x-kubernetes-preserve-unknown-fields), as the real Application CRD
// does for most of its spec.
var (
	appConfigGVK   = schema.GroupVersionKind{Group: "config.example.com", Version: "v1", Kind: "AppConfig"}
	applicationGVK = schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Application"}
)

func crd(gvk schema.GroupVersionKind, plural string) string {
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[1]s.%[2]s
spec:
  group: %[2]s
  scope: Namespaced
  names: {plural: %[1]s, singular: %[3]s, kind: %[4]s, listKind: %[4]sList}
  versions:
    - name: %[5]s
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`, plural, gvk.Group, strings.ToLower(gvk.Kind), gvk.Kind, gvk.Version)
}

var installCRDs sync.Once

// crds installs the test CRDs once for the package (they are
// cluster-scoped) and waits until they are established.
func crds(t *testing.T) {
	t.Helper()
	installCRDs.Do(func() {
		for _, c := range []struct {
			gvk    schema.GroupVersionKind
			plural string
		}{{appConfigGVK, "appconfigs"}, {applicationGVK, "applications"}} {
			for _, o := range env.Apply(t, "", crd(c.gvk, c.plural)) {
				name := o.GetName()
				testenv.Eventually(t, "CRD "+name+" established", func(ctx context.Context) (bool, string) {
					u := &unstructured.Unstructured{}
					u.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
					if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
						return false, err.Error()
					}
					conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
					for _, c := range conds {
						if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
							return true, ""
						}
					}
					return false, "not established"
				})
			}
		}
	})
}

func getObject(ctx context.Context, gvk schema.GroupVersionKind, ns, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u)
}

// waitObject waits until the object exists and check accepts it.
func waitObject(t *testing.T, gvk schema.GroupVersionKind, ns, name string, check func(*unstructured.Unstructured) (bool, string)) *unstructured.Unstructured {
	t.Helper()
	var u *unstructured.Unstructured
	testenv.Eventually(t, gvk.Kind+" "+ns+"/"+name, func(ctx context.Context) (bool, string) {
		var err error
		if u, err = getObject(ctx, gvk, ns, name); err != nil {
			return false, err.Error()
		}
		return check(u)
	})
	return u
}

// hasField accepts an object whose field at path equals want.
func hasField(want any, path ...string) func(*unstructured.Unstructured) (bool, string) {
	return func(u *unstructured.Unstructured) (bool, string) {
		got, ok, err := unstructured.NestedFieldNoCopy(u.Object, path...)
		if err != nil || !ok {
			return false, strings.Join(path, ".") + " missing"
		}
		if !reflect.DeepEqual(got, want) {
			return false, strings.Join(path, ".") + " differs"
		}
		return true, ""
	}
}

func TestESOCustomResourceExamplesSync(t *testing.T) {
	crds(t)
	ns := env.Namespace(t)
	logs := run(t, ns, true)
	env.Apply(t, ns, "examples/manifest-target")

	// manifest-advanced-path.yaml: two literals placed at spec.database and
	// spec.logging.
	es := env.WaitReady(t, ns, "custom-resource-config", metav1.ConditionTrue, externalsecret.ReasonResourceSynced)
	app := waitObject(t, appConfigGVK, ns, "app-settings", hasField(map[string]any{
		"host": "appdb.example.internal",
		"port": int64(5432),
		"credentials": map[string]any{
			"username": "app",
			"password": canary,
		},
	}, "spec", "database"))
	if ok, msg := hasField(map[string]any{"level": "info", "format": "json"}, "spec", "logging")(app); !ok {
		t.Error(msg)
	}
	if _, ok := app.Object["data"]; ok {
		t.Error("a template with target paths only wrote data too")
	}
	if app.GetLabels()[engine.LabelManaged] != engine.LabelManagedValue {
		t.Errorf("managed label missing: %v", app.GetLabels())
	}
	if ref := metav1.GetControllerOf(app); ref == nil || ref.UID != es.UID || ref.Kind != "ExternalSecret" {
		t.Errorf("app-settings is not controlled by its ExternalSecret: %v", app.GetOwnerReferences())
	}
	if app.GetAnnotations()[engine.AnnotationDataHash] == "" {
		t.Errorf("no data hash: %v", app.GetAnnotations())
	}
	waitEvent(t, ns, "custom-resource-config", externalsecret.EventCreated, "Created AppConfig app-settings")

	// manifest-argocd-app.yaml: no template, so every key as a string
	// under spec.data.
	env.WaitReady(t, ns, "argocd-app", metav1.ConditionTrue, externalsecret.ReasonResourceSynced)
	waitObject(t, applicationGVK, ns, "my-application", hasField(map[string]any{
		"repoURL":        "https://git.example.internal/apps.git",
		"path":           "deploy/my-app",
		"targetRevision": "main",
	}, "spec", "data"))

	t.Run("nothing is written when nothing changed", func(t *testing.T) {
		before, err := getObject(context.Background(), appConfigGVK, ns, "app-settings")
		if err != nil {
			t.Fatal(err)
		}
		env.ForceSync(t, ns, "custom-resource-config")
		testenv.Eventually(t, "force-sync done", func(ctx context.Context) (bool, string) {
			var es esv1.ExternalSecret
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "custom-resource-config"}, &es); err != nil {
				return false, err.Error()
			}
			return es.Status.SyncedResourceVersion == externalsecret.Version(&es), es.Status.SyncedResourceVersion
		})
		now, err := getObject(context.Background(), appConfigGVK, ns, "app-settings")
		if err != nil {
			t.Fatal(err)
		}
		if now.GetResourceVersion() != before.GetResourceVersion() {
			t.Errorf("AppConfig rewritten: resourceVersion %s -> %s", before.GetResourceVersion(), now.GetResourceVersion())
		}
	})

	t.Run("an edit is restored and fields keyferry does not write are kept", func(t *testing.T) {
		cur, err := getObject(context.Background(), appConfigGVK, ns, "app-settings")
		if err != nil {
			t.Fatal(err)
		}
		_ = unstructured.SetNestedField(cur.Object, "debug", "spec", "logging", "level")
		_ = unstructured.SetNestedField(cur.Object, "theirs", "spec", "replicas")
		if err := env.Client.Update(context.Background(), cur); err != nil {
			t.Fatal(err)
		}
		fixed := waitObject(t, appConfigGVK, ns, "app-settings", hasField("info", "spec", "logging", "level"))
		if ok, msg := hasField("theirs", "spec", "replicas")(fixed); !ok {
			t.Error(msg)
		}
	})

	t.Run("a deleted object is recreated", func(t *testing.T) {
		gone, err := getObject(context.Background(), applicationGVK, ns, "my-application")
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Delete(context.Background(), gone); err != nil {
			t.Fatal(err)
		}
		waitObject(t, applicationGVK, ns, "my-application", func(u *unstructured.Unstructured) (bool, string) {
			return u.GetUID() != gone.GetUID(), "not recreated yet"
		})
	})

	for _, name := range []string{"custom-resource-config", "argocd-app"} {
		assertNoLeak(t, logs, ns, name)
	}
}

func TestCustomResourceTargetPathWithIndexes(t *testing.T) {
	crds(t)
	ns := env.Namespace(t)
	run(t, ns, true)
	env.Apply(t, ns, store("10.0.0.0/8"))
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: policy
spec:
  secretStoreRef: {name: store}
  target:
    manifest: {apiVersion: config.example.com/v1, kind: AppConfig}
    template:
      templateFrom:
        - literal: |
            - {{ .k }}
          target: spec.rules[0].from[0].source.notRemoteIpBlocks
        - literal: |
            mode: strict
  data:
    - secretKey: k
      remoteRef: {key: k}
`)
	env.WaitReady(t, ns, "policy", metav1.ConditionTrue, externalsecret.ReasonResourceSynced)
	existing := waitObject(t, appConfigGVK, ns, "policy", hasField([]any{map[string]any{"from": []any{map[string]any{"source": map[string]any{
		"notRemoteIpBlocks": []any{"10.0.0.0/8"},
	}}}}}, "spec", "rules"))
	// A literal without target renders into Data: the top-level data
	// field, as ESO writes it.
	if ok, msg := hasField(map[string]any{"mode": "strict"}, "data")(existing); !ok {
		t.Error(msg)
	}
}

func appConfigES(name, target, extra string) string {
	return fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: %s
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  target:
    name: %s
    manifest: {apiVersion: config.example.com/v1, kind: AppConfig}
%s  data:
    - secretKey: k
      remoteRef: {key: k}
`, name, target, extra)
}

func TestCustomResourceTargetNeverTakesOverAnUnownedObject(t *testing.T) {
	crds(t)
	ns := env.Namespace(t)
	logs := run(t, ns, true)
	theirs := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"keep": "me"}}}
	theirs.SetGroupVersionKind(appConfigGVK)
	theirs.SetNamespace(ns)
	theirs.SetName("theirs")
	if err := env.Client.Create(context.Background(), theirs); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, store(canary))
	env.Apply(t, ns, appConfigES("app", "theirs", ""))
	es := env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonSecretNotOwned)
	if c := testenv.ReadyCondition(es); !strings.Contains(c.Message, `AppConfig "theirs"`) || !strings.Contains(c.Message, engine.AnnotationAdopt) {
		t.Errorf("message = %s", c.Message)
	}
	waitEvent(t, ns, "app", engine.ReasonSecretNotOwned, "keyferry.io/adopt")
	now, err := getObject(context.Background(), appConfigGVK, ns, "theirs")
	if err != nil {
		t.Fatal(err)
	}
	if now.GetResourceVersion() != theirs.GetResourceVersion() {
		t.Fatal("the unowned AppConfig was written")
	}

	// Adoption: the annotation naming the ExternalSecret lets it write;
	// the change alone wakes the refused ExternalSecret (the kind is
	// watched since the refused sync read the object).
	patch := client.MergeFrom(now.DeepCopy())
	now.SetAnnotations(map[string]string{engine.AnnotationAdopt: "ExternalSecret/app"})
	if err := env.Client.Patch(context.Background(), now, patch); err != nil {
		t.Fatal(err)
	}
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, externalsecret.ReasonResourceSynced)
	adopted := waitObject(t, appConfigGVK, ns, "theirs", hasField(map[string]any{"k": canary}, "spec", "data"))
	if ok, msg := hasField("me", "spec", "keep")(adopted); !ok {
		t.Errorf("a field keyferry does not write was lost: %s", msg)
	}
	if _, ok := adopted.GetAnnotations()[engine.AnnotationAdopt]; ok {
		t.Errorf("adopt annotation kept: %v", adopted.GetAnnotations())
	}
	if ref := metav1.GetControllerOf(adopted); ref == nil || ref.Name != "app" {
		t.Errorf("adopted AppConfig has no controller reference to app: %v", adopted.GetOwnerReferences())
	}
	assertNoLeak(t, logs, ns, "app")
}

func TestCustomResourceTargetIsDeletedWhenEveryRemoteValueIsGoneUnderDeletionPolicyDelete(t *testing.T) {
	crds(t)
	ns := env.Namespace(t)
	run(t, ns, true)
	env.Apply(t, ns, store("v1"))
	env.Apply(t, ns, appConfigES("app", "app", "    deletionPolicy: Delete\n"))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, externalsecret.ReasonResourceSynced)
	waitObject(t, appConfigGVK, ns, "app", hasField(map[string]any{"k": "v1"}, "spec", "data"))
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
	testenv.Eventually(t, "AppConfig deleted", func(ctx context.Context) (bool, string) {
		_, err := getObject(ctx, appConfigGVK, ns, "app")
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	waitEvent(t, ns, "app", externalsecret.EventDeleted, "Deleted AppConfig app")
}

func TestManifestTargetKindsThatAreRefused(t *testing.T) {
	crds(t)
	ns := env.Namespace(t)
	run(t, ns, true)
	env.Apply(t, ns, store("v1"))
	manifestES := func(name, apiVersion, kind string) string {
		return fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: %s
spec:
  secretStoreRef: {name: store}
  target:
    manifest: {apiVersion: %s, kind: %s}
  data:
    - secretKey: k
      remoteRef: {key: k}
`, name, apiVersion, kind)
	}
	tests := []struct {
		name, apiVersion, kind, reason, msg string
	}{
		{"cluster-scoped", "rbac.authorization.k8s.io/v1", "ClusterRole", engine.ReasonTargetKindUnsupported, "is cluster-scoped"},
		{"unknown", "nothing.example.com/v1", "Nothing", engine.ReasonTargetKindUnsupported, "is not served by the API server"},
		{"secret", "v1", "Secret", engine.ReasonInvalidSpec, "remove spec.target.manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.Apply(t, ns, manifestES(tt.name, tt.apiVersion, tt.kind))
			es := env.WaitReady(t, ns, tt.name, metav1.ConditionFalse, tt.reason)
			if c := testenv.ReadyCondition(es); !strings.Contains(c.Message, tt.msg) {
				t.Errorf("message = %s", c.Message)
			}
			waitEvent(t, ns, tt.name, tt.reason, tt.msg)
		})
	}
	var list unstructured.UnstructuredList
	list.SetGroupVersionKind(schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleList"})
	if err := env.Client.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Items {
		if o.GetName() == "cluster-scoped" {
			t.Fatal("a ClusterRole was written")
		}
	}
}

func TestCustomResourceTargetIsRefusedWithoutTheFlag(t *testing.T) {
	crds(t)
	ns := env.Namespace(t)
	logs := run(t, ns, false)
	env.Apply(t, ns, "examples/manifest-target/00-store.yaml")
	env.Apply(t, ns, "examples/manifest-target/manifest-argocd-app.yaml")
	es := env.WaitReady(t, ns, "argocd-app", metav1.ConditionFalse, engine.ReasonGenericTargetsDisabled)
	if c := testenv.ReadyCondition(es); !strings.Contains(c.Message, "--unsafe-allow-generic-targets") {
		t.Errorf("message does not name the flag: %s", c.Message)
	}
	if _, err := getObject(context.Background(), applicationGVK, ns, "my-application"); !apierrors.IsNotFound(err) {
		t.Errorf("Application my-application: err = %v, want NotFound", err)
	}
	assertNoLeak(t, logs, ns, "argocd-app")
}

// TestCustomResourceTargetTheOperatorMayNotWriteIsForbidden: an operator
// whose role grants every group it uses but config.example.com (as the
// chart does when genericTargets.resources does not name the kind) reports
// TargetForbidden naming the resource and the chart value.
func TestCustomResourceTargetTheOperatorMayNotWriteIsForbidden(t *testing.T) {
	crds(t)
	ns := env.Namespace(t)
	user := "keyferry-without-appconfigs-" + ns
	env.Apply(t, "", fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: %[1]s
rules:
  - apiGroups: ["", "external-secrets.io", "generators.external-secrets.io", "events.k8s.io", "coordination.k8s.io",
      "secrets-store.csi.x-k8s.io", "secret-sync.x-k8s.io", "apiextensions.k8s.io", "authorization.k8s.io", "authentication.k8s.io", "argoproj.io"]
    resources: ["*"]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: %[1]s
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: %[1]s}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: %[1]s}
`, user))
	cfg := rest.CopyConfig(env.Cluster.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	logs := &testenv.LogBuffer{}
	testenv.StartOperator(t, cfg, operator.Options{
		Log: testenv.DebugLogger(logs), Namespace: ns, StartupSpread: time.Second,
		AllowGenericTargets: true, SkipControllerNameValidation: true,
	})
	env.Apply(t, ns, store(canary))
	env.Apply(t, ns, appConfigES("app", "app", ""))
	es := env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonTargetForbidden)
	c := testenv.ReadyCondition(es)
	for _, want := range []string{"AppConfig (config.example.com/v1)", `"appconfigs"`, `"config.example.com"`, "genericTargets.resources"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message %q does not name %s", c.Message, want)
		}
	}
	waitEvent(t, ns, "app", engine.ReasonTargetForbidden, "genericTargets.resources")
	if _, err := getObject(context.Background(), appConfigGVK, ns, "app"); !apierrors.IsNotFound(err) {
		t.Errorf("AppConfig app: err = %v, want NotFound", err)
	}
	assertNoLeak(t, logs, ns, "app")
}
