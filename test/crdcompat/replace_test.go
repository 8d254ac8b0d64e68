package crdcompat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/manifest"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// legacyObjects are created while v1beta1 is ESO's storage version, so etcd
// keeps them as v1beta1 (what a cluster that ran ESO before v0.17 holds).
const legacyObjects = `
apiVersion: external-secrets.io/v1beta1
kind: SecretStore
metadata:
  name: legacy
spec:
  refreshInterval: 60
  provider:
    fake:
      data:
        - key: legacy-key
          value: legacy-value
---
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata:
  name: legacy
spec:
  refreshInterval: 1h
  secretStoreRef:
    name: legacy
  target:
    name: legacy
  data:
    - secretKey: value
      remoteRef:
        key: legacy-key
`

// esoObjects are shapes ESO v2.9.0's schema accepts that keyferry's types
// once failed to decode or must report: refreshInterval as a Go duration, as
// seconds, an unsupported provider, a duration field holding a word.
const esoObjects = `
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: five-minutes
spec:
  refreshInterval: 5m
  provider:
    fake:
      data:
        - key: k5
          value: five-minute-value
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: seconds
spec:
  refreshInterval: 300
  provider:
    fake:
      data:
        - key: ks
          value: seconds-value
---
apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: crdcompat-hourly
spec:
  refreshInterval: 1h
  provider:
    fake:
      data:
        - key: kc
          value: cluster-value
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: doppler
spec:
  refreshInterval: 10m
  provider:
    doppler:
      auth:
        secretRef:
          dopplerToken:
            name: doppler-token
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: odd-timeout
spec:
  provider:
    webhook:
      url: https://webhook.invalid/{{ .remoteRef.key }}
      timeout: soon
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: on-five-minutes
spec:
  secretStoreRef:
    name: five-minutes
  data:
    - secretKey: value
      remoteRef:
        key: k5
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: on-seconds
spec:
  secretStoreRef:
    name: seconds
  data:
    - secretKey: value
      remoteRef:
        key: ks
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: on-cluster-store
spec:
  secretStoreRef:
    kind: ClusterSecretStore
    name: crdcompat-hourly
  data:
    - secretKey: value
      remoteRef:
        key: kc
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: daily
spec:
  refreshInterval: 1d
  secretStoreRef:
    name: seconds
  data:
    - secretKey: value
      remoteRef:
        key: ks
`

// afterSwitch are created through keyferry's CRDs: the same ESO shapes must
// be accepted by keyferry's schema.
const afterSwitch = `
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: five-minutes-after
spec:
  refreshInterval: 5m
  provider:
    fake:
      data:
        - key: k5
          value: created-after-the-switch
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: doppler-after
spec:
  refreshInterval: 600
  provider:
    doppler:
      auth:
        secretRef:
          dopplerToken:
            name: doppler-token
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: after-switch
spec:
  refreshInterval: 1d
  secretStoreRef:
    name: five-minutes-after
  data:
    - secretKey: value
      remoteRef:
        key: k5
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: after-switch-ok
spec:
  secretStoreRef:
    name: five-minutes-after
  data:
    - secretKey: value
      remoteRef:
        key: k5
`

// TestReplacingESOCRDsKeepsEverySyncing is the switch from ESO on a real API
// server: ESO v2.9.0's CRDs, installed in a cluster whose history made
// v1beta1 a storage version (status.storedVersions [v1beta1, v1]), holding
// objects in both versions and shapes keyferry once could not decode, are
// replaced by keyferry's CRDs the way `kubectl apply` or helm would (an
// update of the existing CRDs). The update is accepted, and the operator
// then syncs every ExternalSecret; the stores with refreshInterval 5m and
// 300 are Ready; the objects keyferry cannot use report which field is wrong
// instead of stopping the others.
func TestReplacingESOCRDsKeepsEverySyncing(t *testing.T) {
	if _, err := os.Stat(filepath.Join(mustBinaryDir(t), "kube-apiserver")); err != nil {
		t.Skipf("control plane not built (make control-plane): %v", err)
	}
	root := repoRoot(t)
	eso := esoDir(t, root)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, err := devcluster.Start(ctx, devcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Stop() }()
	scheme := operator.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cl.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := "crdcompat"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}

	// 1. The history: ESO's CRDs with v1beta1 as the storage version, and
	// objects written then.
	for _, file := range servedFiles {
		old := readCRD(t, filepath.Join(eso, file))
		for i := range old.Spec.Versions {
			v := &old.Spec.Versions[i]
			v.Served, v.Storage = true, v.Name == "v1beta1"
		}
		createCRD(ctx, t, c, old)
	}
	apply(ctx, t, c, ns, legacyObjects)

	// 2. ESO v2.9.0's CRDs as they ship (v1 stored, v1beta1 unserved): an
	// update, so status.storedVersions becomes [v1beta1, v1].
	for _, file := range servedFiles {
		updateCRD(ctx, t, c, readCRD(t, filepath.Join(eso, file)))
	}
	apply(ctx, t, c, ns, esoObjects)
	// A status as a client other than ESO may write it: RFC 3339 with a
	// lower-case t and z passes the API server's date-time check, and
	// metav1.Time cannot decode it.
	{
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(esv1.GroupVersion.WithKind("ExternalSecret"))
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "on-seconds"}, u); err != nil {
			t.Fatal(err)
		}
		const ts = "2024-01-02t03:04:05z"
		_ = unstructured.SetNestedField(u.Object, ts, "status", "refreshTime")
		_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": "Ready", "status": "False", "reason": "SecretSyncedError", "lastTransitionTime": ts}}, "status", "conditions")
		if err := c.Status().Update(ctx, u); err != nil {
			t.Fatalf("writing a status with lower-case timestamps: %v", err)
		}
	}
	for _, file := range servedFiles {
		// Make the state exact whatever the history did.
		crd := readCRD(t, filepath.Join(eso, file))
		cur := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Name: crd.Name}, cur); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Status.StoredVersions = []string{"v1beta1", "v1"}
		if err := c.Status().Patch(ctx, cur, patch); err != nil {
			t.Fatalf("patching %s status.storedVersions: %v", crd.Name, err)
		}
	}

	// 3. The failure this guards against: a CRD without v1beta1 is refused.
	{
		kf := readCRD(t, filepath.Join(root, "config", "crd", servedFiles[0]))
		kf.Spec.Versions = slices.DeleteFunc(kf.Spec.Versions, func(v apiextensionsv1.CustomResourceDefinitionVersion) bool { return v.Name == "v1beta1" })
		cur := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Name: kf.Name}, cur); err != nil {
			t.Fatal(err)
		}
		cur.Spec = kf.Spec
		err := c.Update(ctx, cur, client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "must remain in spec.versions") {
			t.Fatalf("updating to a CRD without v1beta1: err = %v; want the API server's storedVersions refusal", err)
		}
	}

	// 4. keyferry's CRDs replace ESO's: accepted.
	entries, err := filepath.Glob(filepath.Join(root, "config", "crd", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range entries {
		kf := readCRD(t, path)
		if slices.Contains(servedFiles, filepath.Base(path)) {
			updateCRD(ctx, t, c, kf)
			continue
		}
		createCRD(ctx, t, c, kf) // SecretSync, SecretProviderClass
	}
	for _, file := range servedFiles {
		cur := &apiextensionsv1.CustomResourceDefinition{}
		name := readCRD(t, filepath.Join(root, "config", "crd", file)).Name
		if err := c.Get(ctx, client.ObjectKey{Name: name}, cur); err != nil {
			t.Fatal(err)
		}
		if got := cur.Status.StoredVersions; !slices.Equal(got, []string{"v1beta1", "v1"}) {
			t.Errorf("%s status.storedVersions = %v", name, got)
		}
		if v := version(cur, "v1beta1"); v == nil || v.Served || v.Storage || !v.Deprecated {
			t.Errorf("%s: v1beta1 = %+v; want listed, deprecated, neither served nor stored", name, v)
		}
	}

	// Every object reads through keyferry's v1 types, including the ones
	// etcd holds as v1beta1.
	var stores esv1.SecretStoreList
	if err := c.List(ctx, &stores, client.InNamespace(ns)); err != nil {
		t.Fatalf("listing SecretStores through keyferry's types: %v", err)
	}
	var ss esv1.SecretStore
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "five-minutes"}, &ss); err != nil {
		t.Fatal(err)
	}
	if d, err := ss.Spec.RefreshInterval.Duration(); err != nil || d != 5*time.Minute {
		t.Fatalf("five-minutes refreshInterval = %v, %v; want 5m", d, err)
	}

	// The same shapes are accepted through keyferry's CRDs.
	apply(ctx, t, c, ns, afterSwitch)

	// 5. The operator, in process, on this cluster.
	op, err := operator.New(ctx, cl.Config, operator.Options{Log: logr.Discard(), StartupSpread: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	opCtx, stopOp := context.WithCancel(ctx)
	go func() { done <- op.Manager.Start(opCtx) }()
	defer func() {
		stopOp()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("operator: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("operator did not stop")
		}
	}()
	env := &testenv.Env{Cluster: cl, Client: c, Op: op, Root: root}

	for name, want := range map[string]string{
		"legacy":           "legacy-value",
		"on-five-minutes":  "five-minute-value",
		"on-seconds":       "seconds-value",
		"on-cluster-store": "cluster-value",
		"after-switch-ok":  "created-after-the-switch",
	} {
		env.WaitReady(t, ns, name, metav1.ConditionTrue, "SecretSynced")
		env.WaitSecret(t, ns, name, testenv.HasData(map[string]string{"value": want}))
	}
	env.WaitStoreReady(t, ns, "five-minutes")
	env.WaitStoreReady(t, ns, "seconds")
	env.WaitStoreReady(t, ns, "legacy")
	env.WaitStoreReady(t, "", "crdcompat-hourly")
	env.WaitStoreReady(t, ns, "five-minutes-after")

	for _, name := range []string{"daily", "after-switch"} {
		es := env.WaitReady(t, ns, name, metav1.ConditionFalse, "InvalidSpec")
		if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, `spec.refreshInterval: "1d" is not a duration`) {
			t.Errorf("%s: message %q does not name the field", name, msg)
		}
	}
	waitStoreCondition(t, env, ns, "odd-timeout", func(c esv1.SecretStoreStatusCondition) bool {
		return c.Status == metav1.ConditionFalse && strings.Contains(c.Message, `spec.provider.webhook.timeout: "soon" is not a duration`)
	})
	waitStoreCondition(t, env, ns, "doppler-after", func(c esv1.SecretStoreStatusCondition) bool {
		return c.Status == metav1.ConditionFalse && c.Reason == esv1.ReasonUnsupportedProvider
	})
	waitStoreCondition(t, env, ns, "doppler", func(c esv1.SecretStoreStatusCondition) bool {
		return c.Status == metav1.ConditionFalse && c.Reason == esv1.ReasonUnsupportedProvider
	})

	// The invalid values are kept as the user wrote them.
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(esv1.GroupVersion.WithKind("ExternalSecret"))
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "daily"}, u); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := unstructured.NestedString(u.Object, "spec", "refreshInterval"); v != "1d" {
		t.Errorf("daily spec.refreshInterval is now %q", v)
	}
	// An unsupported provider's configuration is kept whole.
	for _, name := range []string{"doppler", "doppler-after"} {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(esv1.GroupVersion.WithKind("SecretStore"))
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
			t.Fatal(err)
		}
		if v, _, _ := unstructured.NestedString(u.Object, "spec", "provider", "doppler", "auth", "secretRef", "dopplerToken", "name"); v != "doppler-token" {
			t.Errorf("%s: spec.provider.doppler lost its fields: %v", name, u.Object["spec"])
		}
	}

	// 6. v1beta1 served on request.
	serveV1Beta1(ctx, t, c, env, ns, root)
}

// v1beta1Objects are an ESO v1beta1 store and ExternalSecret, as manifests
// written before v1 have them.
const v1beta1Objects = `
apiVersion: external-secrets.io/v1beta1
kind: SecretStore
metadata:
  name: still-v1beta1
spec:
  provider:
    fake:
      data:
        - key: beta-key
          value: beta-value
---
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata:
  name: still-v1beta1
spec:
  refreshInterval: 1h
  secretStoreRef:
    name: still-v1beta1
    kind: SecretStore
  target:
    name: still-v1beta1
    creationPolicy: Owner
  data:
    - secretKey: value
      remoteRef:
        key: beta-key
`

// serveV1Beta1 is the chart's crds.unsafeServeV1Beta1 (test/chart checks
// that the value renders served: true on v1beta1): not served, a v1beta1
// manifest is refused; served, it applies, is validated by the v1 schema,
// and syncs like a v1 object.
func serveV1Beta1(ctx context.Context, t *testing.T, c client.Client, env *testenv.Env, ns, root string) {
	t.Helper()
	objs, err := manifest.Parse([]byte(v1beta1Objects))
	if err != nil {
		t.Fatal(err)
	}
	if err := manifest.Apply(ctx, c, ns, objs); err == nil {
		t.Fatal("a v1beta1 manifest applied while v1beta1 is not served")
	}
	for _, file := range servedFiles {
		crd := readCRD(t, filepath.Join(root, "config", "crd", file))
		for i := range crd.Spec.Versions {
			if crd.Spec.Versions[i].Name == "v1beta1" {
				crd.Spec.Versions[i].Served = true
			}
		}
		updateCRD(ctx, t, c, crd)
	}
	testenv.Eventually(t, "v1beta1 manifests apply", func(ctx context.Context) (bool, string) {
		if err := manifest.Apply(ctx, c, ns, objs); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	env.WaitReady(t, ns, "still-v1beta1", metav1.ConditionTrue, "SecretSynced")
	env.WaitSecret(t, ns, "still-v1beta1", testenv.HasData(map[string]string{"value": "beta-value"}))
	env.WaitStoreReady(t, ns, "still-v1beta1")

	// v1's schema validates v1beta1: a value ESO's schema refuses is
	// refused, not stored.
	bad, err := manifest.Parse([]byte(strings.NewReplacer("name: still-v1beta1\nspec:\n  refreshInterval: 1h", "name: bad-v1beta1\nspec:\n  refreshInterval: 1h", "creationPolicy: Owner", "creationPolicy: Sometimes").Replace(v1beta1Objects[strings.Index(v1beta1Objects, "---"):])))
	if err != nil {
		t.Fatal(err)
	}
	err = manifest.Apply(ctx, c, ns, bad)
	if err == nil || !strings.Contains(err.Error(), "creationPolicy") {
		t.Fatalf("a v1beta1 ExternalSecret with creationPolicy Sometimes: err = %v; want the schema's refusal", err)
	}
}

func waitStoreCondition(t *testing.T, env *testenv.Env, ns, name string, ok func(esv1.SecretStoreStatusCondition) bool) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("SecretStore %s/%s condition", ns, name), func(ctx context.Context) (bool, string) {
		var ss esv1.SecretStore
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ss); err != nil {
			return false, err.Error()
		}
		for _, c := range ss.Status.Conditions {
			if c.Type == esv1.SecretStoreReady {
				return ok(c), fmt.Sprintf("Ready=%s reason=%s message=%s", c.Status, c.Reason, c.Message)
			}
		}
		return false, "no Ready condition"
	})
}

func mustBinaryDir(t *testing.T) string {
	t.Helper()
	d, err := devcluster.BinaryDir()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func apply(ctx context.Context, t *testing.T, c client.Client, ns, y string) {
	t.Helper()
	objs, err := manifest.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if err := manifest.Apply(ctx, c, ns, objs); err != nil {
		t.Fatalf("applying: %v", err)
	}
}

func createCRD(ctx context.Context, t *testing.T, c client.Client, crd *apiextensionsv1.CustomResourceDefinition) {
	t.Helper()
	if err := c.Create(ctx, crd); err != nil {
		t.Fatalf("creating CRD %s: %v", crd.Name, err)
	}
	waitEstablished(ctx, t, c, crd)
}

// updateCRD replaces an existing CRD's spec, labels and annotations, as
// `kubectl apply` or `helm upgrade` of the new CRD does.
func updateCRD(ctx context.Context, t *testing.T, c client.Client, crd *apiextensionsv1.CustomResourceDefinition) {
	t.Helper()
	cur := &apiextensionsv1.CustomResourceDefinition{}
	if err := c.Get(ctx, client.ObjectKey{Name: crd.Name}, cur); err != nil {
		t.Fatal(err)
	}
	cur.Spec = crd.Spec
	cur.Labels, cur.Annotations = crd.Labels, crd.Annotations
	if err := c.Update(ctx, cur); err != nil {
		t.Fatalf("updating CRD %s: %v", crd.Name, err)
	}
	waitEstablished(ctx, t, c, crd)
}

// waitEstablished waits until the CRD is established and every served
// version of it answers a list.
func waitEstablished(ctx context.Context, t *testing.T, c client.Client, crd *apiextensionsv1.CustomResourceDefinition) {
	t.Helper()
	testenv.Eventually(t, "CRD "+crd.Name+" established", func(ctx context.Context) (bool, string) {
		cur := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Name: crd.Name}, cur); err != nil {
			return false, err.Error()
		}
		established := false
		for _, cond := range cur.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		if !established {
			return false, "not established"
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			l := &unstructured.UnstructuredList{}
			l.SetAPIVersion(crd.Spec.Group + "/" + v.Name)
			l.SetKind(crd.Spec.Names.ListKind)
			if err := c.List(ctx, l, client.Limit(1)); err != nil {
				return false, fmt.Sprintf("listing %s: %v", v.Name, err)
			}
		}
		return true, ""
	})
}
