package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/manifest"
)

// EnvESOCRDs names the directory holding ESO v2.9.0's CRDs; by default
// ../shared/reference/eso-v2.9.0-crds beside the repository (as in
// test/crdcompat).
const EnvESOCRDs = "KEYFERRY_ESO_CRDS"

// esoServed are ESO's CRDs of the kinds keyferry serves: the ones the
// migration hands over to keyferry's chart.
var esoServed = []string{"externalsecrets", "clusterexternalsecrets", "secretstores", "clustersecretstores"}

// ESO's Helm release, as ESO's own install docs name it.
const (
	esoRelease   = "external-secrets"
	esoNamespace = "external-secrets"
)

// TestMigrateFromESOOnARealNode follows docs/migrate-from-eso.md and
// docs/install.md ("Replacing an ESO that Helm installed") on a real node,
// with the cluster as ESO v2.9.0 leaves it: ESO's CRDs (from its Helm
// release, status.storedVersions [v1beta1, v1]), its objects, and the
// Secrets it wrote. Each subtest sets that state up itself and uninstalls
// keyferry when it ends, so they run alone (-run) or in any order; they
// share one node because starting one is the slow part.
func TestMigrateFromESOOnARealNode(t *testing.T) {
	if os.Getenv("KEYFERRY_NODE") != "1" {
		t.Skip("the real-node test needs root and changes the host; run `make test-node` (sets KEYFERRY_NODE=1)")
	}
	start := time.Now()
	s := newSuite(t)
	eso := esoCRDDir(t, s.root)
	t.Logf("node Ready after %s", time.Since(start).Round(time.Second))

	t.Run("SideBySideWithControllerClasses", func(t *testing.T) {
		begin := time.Now()
		s.with(t).sideBySide(eso)
		t.Logf("side by side took %s", time.Since(begin).Round(time.Second))
	})
	t.Run("ReplaceESO", func(t *testing.T) {
		begin := time.Now()
		s.with(t).replaceESO(eso)
		t.Logf("replacing ESO took %s", time.Since(begin).Round(time.Second))
	})
	t.Logf("TestMigrateFromESOOnARealNode took %s", time.Since(start).Round(time.Second))
}

// esoCRDDir returns the directory of ESO v2.9.0's CRDs, or skips the test.
func esoCRDDir(t *testing.T, root string) string {
	t.Helper()
	dir := os.Getenv(EnvESOCRDs)
	if dir == "" {
		dir = filepath.Join(filepath.Dir(root), "shared", "reference", "eso-v2.9.0-crds")
	}
	for _, r := range esoServed {
		if _, err := os.Stat(filepath.Join(dir, "external-secrets.io_"+r+".yaml")); err != nil {
			t.Skipf("ESO v2.9.0's CRDs not found (set %s): %v", EnvESOCRDs, err)
		}
	}
	return dir
}

const replaceObjects = `
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: fake
spec:
  provider:
    fake:
      data:
        - {key: db-user, value: app}
        - {key: db-password, value: migrate-not-a-real-password}
        - {key: api-token, value: migrate-not-a-real-token}
        - {key: shared-key, value: shared-value}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: db
spec:
  refreshInterval: 1h
  secretStoreRef: {name: fake, kind: SecretStore}
  target: {name: db-credentials}
  data:
    - {secretKey: username, remoteRef: {key: db-user}}
    - {secretKey: password, remoteRef: {key: db-password}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: api
spec:
  refreshInterval: 1h
  secretStoreRef: {name: fake, kind: SecretStore}
  target: {name: api-token, creationPolicy: Owner, deletionPolicy: Retain}
  data:
    - {secretKey: token, remoteRef: {key: api-token}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: orphan
spec:
  refreshInterval: 1h
  secretStoreRef: {name: fake, kind: SecretStore}
  target: {name: orphaned, creationPolicy: Orphan}
  data:
    - {secretKey: user, remoteRef: {key: db-user}}
`

const replaceCES = `
apiVersion: external-secrets.io/v1
kind: ClusterExternalSecret
metadata:
  name: migrate-shared
spec:
  refreshTime: 1m
  namespaceSelectors:
    - matchLabels: {eso-migrate: "true"}
  externalSecretSpec:
    refreshInterval: 1h
    secretStoreRef: {name: fake, kind: SecretStore}
    target: {name: shared}
    data:
      - {secretKey: shared, remoteRef: {key: shared-key}}
`

// replaceESO: ESO is gone (its release kept its CRDs, docs/install.md steps
// 1-2), and keyferry's chart adopts the CRDs (step 3, first way). Every
// ExternalSecret syncs through keyferry's write checks and no Secret is
// written, since no data changed.
func (s *suite) replaceESO(eso string) {
	t, ctx := s.t, context.Background()
	const ns = "eso-migrate"
	s.installESOCRDs(eso)
	s.ensureNamespace(ns, map[string]string{"eso-migrate": "true"})

	// ESO's objects, and what ESO v2.9.0 leaves for them.
	s.applyYAML(ns, replaceObjects)
	s.applyYAML("", replaceCES)
	ces := s.get("ClusterExternalSecret", "", "migrate-shared")
	esoCreatedES := s.fromYAML(`
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: migrate-shared
spec:
  refreshInterval: 1h
  secretStoreRef: {name: fake, kind: SecretStore}
  target: {name: shared}
  data:
    - {secretKey: shared, remoteRef: {key: shared-key}}
`)
	esoCreatedES.SetNamespace(ns)
	esoCreatedES.SetOwnerReferences([]metav1.OwnerReference{controllerRef(ces)})
	if err := s.c.Create(ctx, esoCreatedES); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating the ExternalSecret ESO made for the ClusterExternalSecret: %v", err)
	}
	secrets := []struct {
		es, name string
		data     map[string]string
		orphan   bool
	}{
		{es: "db", name: "db-credentials", data: map[string]string{"username": "app", "password": "migrate-not-a-real-password"}},
		{es: "api", name: "api-token", data: map[string]string{"token": "migrate-not-a-real-token"}},
		{es: "orphan", name: "orphaned", data: map[string]string{"user": "app"}, orphan: true},
		{es: "migrate-shared", name: "shared", data: map[string]string{"shared": "shared-value"}},
	}
	var keys []client.ObjectKey
	for _, sec := range secrets {
		var owner *unstructured.Unstructured
		if !sec.orphan {
			owner = s.get("ExternalSecret", ns, sec.es)
		}
		s.esoSecret(ns, sec.es, sec.name, sec.data, owner)
		keys = append(keys, client.ObjectKey{Namespace: ns, Name: sec.name})
	}
	before := s.versionsOf(keys)

	// docs/install.md, "Replacing an ESO that Helm installed", step 3: let
	// keyferry's release adopt the CRDs, then install keyferry.
	s.adoptCRDs(eso)
	installed := time.Now()
	pod := s.installKeyferry()
	t.Logf("operator Pod %s Ready %s after helm install", pod.Name, time.Since(installed).Round(time.Second))

	// Every ExternalSecret syncs (ESO's status is not there to read: each is
	// a full sync through keyferry's write checks).
	for _, name := range []string{"db", "api", "orphan", "migrate-shared"} {
		s.waitESReady(ns, name)
	}
	token := s.metricsToken()
	s.waitMetric(pod, token, true, `keyferry_syncs_total{kind="ExternalSecret",reason="",result="success"}`, 4)
	t.Logf("every ExternalSecret Ready %s after helm install", time.Since(installed).Round(time.Second))
	if w := s.metricSum(pod, token, true, "keyferry_secret_writes_total"); w != 0 {
		t.Errorf("keyferry_secret_writes_total = %v after the switch; want 0, no data changed", w)
	}
	if after := s.versionsOf(keys); after != before {
		t.Errorf("Secrets ESO wrote were rewritten by the switch: %s → %s", before, after)
	}
	for _, k := range keys {
		var sec corev1.Secret
		if err := s.c.Get(ctx, k, &sec); err != nil {
			t.Errorf("Secret %s after the switch: %v", k, err)
		} else if sec.DeletionTimestamp != nil {
			t.Errorf("Secret %s is being deleted after the switch", k)
		}
	}

	s.checkCRDsAreKeyferrys()
}

const sideObjects = `
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: eso-kept
spec:
  controller: default
  provider:
    fake:
      data:
        - {key: kept-key, value: kept-value}
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: moved
spec:
  controller: keyferry
  provider:
    fake:
      data:
        - {key: moved-key, value: moved-value}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: eso-served
spec:
  refreshInterval: 1h
  secretStoreRef: {name: eso-kept}
  data:
    - {secretKey: value, remoteRef: {key: kept-key}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: eso-not-yet-synced
spec:
  refreshInterval: 1h
  secretStoreRef: {name: eso-kept}
  data:
    - {secretKey: value, remoteRef: {key: kept-key}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: on-moved
spec:
  refreshInterval: 1h
  secretStoreRef: {name: moved}
  data:
    - {secretKey: value, remoteRef: {key: moved-key}}
`

// sideBySide: ESO still installed (its release owns the CRDs) and keyferry
// installed beside it with controllerClass keyferry, per
// docs/migrate-from-eso.md "Running beside ESO with controller classes".
// keyferry serves the store of its class and leaves ESO's store and its
// ExternalSecrets alone; moving the store hands them over without
// rewriting the Secret ESO wrote.
func (s *suite) sideBySide(eso string) {
	t, ctx := s.t, context.Background()
	const ns = "eso-side"
	s.installESOCRDs(eso)
	s.ensureNamespace(ns, nil)
	s.applyYAML(ns, sideObjects)
	// ESO served eso-served before keyferry came: its Secret is there.
	s.esoSecret(ns, "eso-served", "eso-served", map[string]string{"value": "kept-value"}, s.get("ExternalSecret", ns, "eso-served"))
	esoObjs := []struct{ kind, name string }{{"SecretStore", "eso-kept"}, {"ExternalSecret", "eso-served"}, {"ExternalSecret", "eso-not-yet-synced"}}
	versions := map[string]string{}
	for _, o := range esoObjs {
		versions[o.name] = s.get(o.kind, ns, o.name).GetResourceVersion()
	}
	served := client.ObjectKey{Namespace: ns, Name: "eso-served"}
	before := s.versionsOf([]client.ObjectKey{served})

	// ESO's release owns the CRDs, so the chart's default (install them)
	// is refused by Helm, which does not take over another release's
	// objects, and leaves no release behind.
	repo, tag := splitRef(s.imageRef)
	out, err := s.helmOutput("install", release, filepath.Join(s.root, "deploy", "chart", "keyferry"),
		"--namespace", namespace, "--create-namespace", "--set",
		"image.repository="+repo+",image.tag="+tag+",image.pullPolicy=Never,controllerClass=keyferry")
	if err == nil || !strings.Contains(out, "invalid ownership metadata") || !strings.Contains(out, "meta.helm.sh/release-name") {
		t.Fatalf("helm install with the CRDs of ESO's release: err = %v; want Helm's ownership refusal\n%s", err, out)
	}

	installed := time.Now()
	pod := s.installKeyferry("controllerClass=keyferry",
		// ESO's release owns these CRDs while it runs; keyferry's chart
		// installs only the others (SecretSync, SecretProviderClass,
		// ClusterGenerator: ESO's release here has no CRD for it).
		"crds.createExternalSecret=false", "crds.createSecretStore=false",
		"crds.createClusterSecretStore=false", "crds.createClusterExternalSecret=false",
		"crds.createPushSecret=false", "crds.createClusterPushSecret=false", "crds.createGenerators=false")
	t.Logf("operator Pod %s Ready %s after helm install", pod.Name, time.Since(installed).Round(time.Second))
	if !strings.Contains(strings.Join(pod.Spec.Containers[0].Args, " "), "--controller-class=keyferry") {
		t.Errorf("operator args %v lack --controller-class=keyferry", pod.Spec.Containers[0].Args)
	}

	// keyferry serves the store of its class.
	s.waitESReady(ns, "on-moved")
	s.waitSecret(ns, "on-moved", map[string]string{"value": "moved-value"})
	s.waitStoreReady(ns, "moved")
	token := s.metricsToken()
	s.waitMetric(pod, token, true, `keyferry_syncs_total{kind="ExternalSecret",reason="",result="success"}`, 1)
	t.Logf("on-moved synced %s after helm install", time.Since(installed).Round(time.Second))

	// ESO's store and its ExternalSecrets are left alone: no status, no
	// write, no Secret. keyferry saw them (same informers) before on-moved's
	// sync was counted.
	for _, o := range esoObjs {
		u := s.get(o.kind, ns, o.name)
		if u.GetResourceVersion() != versions[o.name] {
			t.Errorf("%s %s of ESO's class was written by keyferry (resourceVersion %s → %s)", o.kind, o.name, versions[o.name], u.GetResourceVersion())
		}
		if st, ok := u.Object["status"]; ok && st != nil && len(st.(map[string]any)) > 0 {
			t.Errorf("%s %s of ESO's class has a status: %v", o.kind, o.name, st)
		}
	}
	var missing corev1.Secret
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "eso-not-yet-synced"}, &missing); !apierrors.IsNotFound(err) {
		t.Errorf("Secret eso-not-yet-synced of ESO's class: err = %v; want NotFound", err)
	}
	if after := s.versionsOf([]client.ObjectKey{served}); after != before {
		t.Errorf("the Secret ESO wrote changed while its store is ESO's: %s → %s", before, after)
	}
	if w := s.metricSum(pod, token, true, "keyferry_secret_writes_total"); w != 1 {
		t.Errorf("keyferry_secret_writes_total = %v; want 1 (on-moved's Secret)", w)
	}

	// Step 3: moving the store hands it and its ExternalSecrets over at
	// once; the Secret ESO wrote is not rewritten.
	store := s.get("SecretStore", ns, "eso-kept")
	if err := s.c.Patch(ctx, store, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"controller":"keyferry"}}`))); err != nil {
		t.Fatalf("moving store eso-kept to keyferry: %v", err)
	}
	moved := time.Now()
	s.waitStoreReady(ns, "eso-kept")
	s.waitESReady(ns, "eso-served")
	s.waitESReady(ns, "eso-not-yet-synced")
	s.waitSecret(ns, "eso-not-yet-synced", map[string]string{"value": "kept-value"})
	t.Logf("moved store's ExternalSecrets Ready %s after the move", time.Since(moved).Round(time.Second))
	if after := s.versionsOf([]client.ObjectKey{served}); after != before {
		t.Errorf("the Secret ESO wrote was rewritten when its store moved to keyferry: %s → %s", before, after)
	}
	if w := s.metricSum(pod, token, true, "keyferry_secret_writes_total"); w != 2 {
		t.Errorf("keyferry_secret_writes_total = %v after the move; want 2 (on-moved and eso-not-yet-synced created)", w)
	}

	// Step 4: ESO serves nothing any more and is uninstalled, its CRDs kept
	// (docs/install.md steps 1-2: the state installESOCRDs made). keyferry's
	// release takes the CRDs over (step 3) with a helm upgrade that turns
	// them on. Helm 4's server-side apply needs --force-conflicts: ESO's
	// release (Helm 3) wrote the CRDs as field manager "helm" with updates,
	// so without it the upgrade fails with conflicts on .spec.versions.
	// Nothing is rewritten: a forced sync of every ExternalSecret then writes
	// no Secret.
	all := []client.ObjectKey{served, {Namespace: ns, Name: "eso-not-yet-synced"}, {Namespace: ns, Name: "on-moved"}}
	before = s.versionsOf(all)
	s.adoptCRDs(eso)
	upgraded := time.Now()
	s.helmRun("upgrade", release, filepath.Join(s.root, "deploy", "chart", "keyferry"), "--namespace", namespace, "--reuse-values", "--force-conflicts",
		"--set", "crds.createExternalSecret=true,crds.createSecretStore=true,crds.createClusterSecretStore=true,crds.createClusterExternalSecret=true,"+
			"crds.createPushSecret=true,crds.createClusterPushSecret=true,crds.createGenerators=true")
	// Only CRDs changed: the operator Pod runs on.
	pod = s.waitOperatorReady("")
	s.checkCRDsAreKeyferrys()
	const syncs = `keyferry_syncs_total{kind="ExternalSecret",reason="",result="success"}`
	baseSyncs := s.metricSum(pod, token, true, syncs)
	baseWrites := s.metricSum(pod, token, true, "keyferry_secret_writes_total")
	for _, k := range all {
		es := s.get("ExternalSecret", ns, k.Name)
		if err := s.c.Patch(ctx, es, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"force-sync":"after-the-switch"}}}`))); err != nil {
			t.Fatalf("force-sync of %s: %v", k.Name, err)
		}
	}
	s.waitMetric(pod, token, true, syncs, baseSyncs+float64(len(all)))
	t.Logf("CRDs keyferry's and every ExternalSecret synced again %s after helm upgrade", time.Since(upgraded).Round(time.Second))
	if w := s.metricSum(pod, token, true, "keyferry_secret_writes_total"); w != baseWrites {
		t.Errorf("keyferry_secret_writes_total went from %v to %v across the CRD handover and forced syncs; want no write", baseWrites, w)
	}
	if after := s.versionsOf(all); after != before {
		t.Errorf("Secrets were rewritten by the CRD handover: %s → %s", before, after)
	}
}

// adoptCRDs runs docs/install.md "Replacing an ESO that Helm installed"
// step 3 (first way): keyferry's release adopts ESO's CRDs.
func (s *suite) adoptCRDs(dir string) {
	s.t.Helper()
	for _, crd := range s.esoCRDNames(dir) {
		s.kubectl("annotate", "crd", crd, "--overwrite",
			"meta.helm.sh/release-name="+release, "meta.helm.sh/release-namespace="+namespace)
		s.kubectl("label", "crd", crd, "--overwrite", "app.kubernetes.io/managed-by=Helm")
	}
}

// esoCRDNames lists the CRDs of ESO's release (every file of dir): all of
// them, not only the kinds keyferry syncs, are adopted, since keyferry's
// chart installs every ESO CRD (PushSecret, generators...).
func (s *suite) esoCRDNames(dir string) []string {
	s.t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		s.t.Fatalf("ESO's CRDs in %s: %v", dir, err)
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			s.t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(b, crd); err != nil {
			s.t.Fatalf("decoding %s: %v", f, err)
		}
		names = append(names, crd.Name)
	}
	return names
}

// checkCRDsAreKeyferrys checks that the CRDs ESO had are now keyferry's,
// in keyferry's release, and still list v1beta1 as stored.
func (s *suite) checkCRDsAreKeyferrys() {
	s.t.Helper()
	for _, r := range esoServed {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := s.c.Get(context.Background(), client.ObjectKey{Name: r + ".external-secrets.io"}, &crd); err != nil {
			s.t.Fatal(err)
		}
		if crd.Annotations["meta.helm.sh/release-name"] != release || crd.Labels["app.kubernetes.io/instance"] != release {
			s.t.Errorf("CRD %s is not keyferry's release's: labels %v, annotations %v", crd.Name, crd.Labels, crd.Annotations)
		}
		if !slices.Equal(crd.Status.StoredVersions, []string{"v1beta1", "v1"}) {
			s.t.Errorf("CRD %s status.storedVersions = %v", crd.Name, crd.Status.StoredVersions)
		}
		if r == "secretstores" && !hasProviderProperty(&crd, "file") {
			s.t.Errorf("CRD %s has no spec.provider.file: still ESO's schema", crd.Name)
		}
	}
}

// installESOCRDs puts the cluster's CRDs in the state ESO's Helm release
// leaves them after docs/install.md step 1: ESO v2.9.0's CRDs (every file
// of the directory), in release external-secrets, with helm.sh/resource-
// policy keep, written by Helm's field manager; the four kinds keyferry
// serves with status.storedVersions [v1beta1, v1]. Existing CRDs are
// updated to that state, so a subtest does not depend on another.
func (s *suite) installESOCRDs(dir string) {
	t, ctx := s.t, context.Background()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("ESO's CRDs in %s: %v", dir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(b, crd); err != nil {
			t.Fatalf("decoding %s: %v", f, err)
		}
		crd.Labels = map[string]string{
			"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/name": "external-secrets",
			"app.kubernetes.io/instance": esoRelease, "app.kubernetes.io/version": "v2.9.0",
		}
		crd.Annotations = map[string]string{
			"meta.helm.sh/release-name": esoRelease, "meta.helm.sh/release-namespace": esoNamespace,
			"helm.sh/resource-policy": "keep",
		}
		cur := &apiextensionsv1.CustomResourceDefinition{}
		switch err := s.c.Get(ctx, client.ObjectKey{Name: crd.Name}, cur); {
		case apierrors.IsNotFound(err):
			if err := s.c.Create(ctx, crd, client.FieldOwner("helm")); err != nil {
				t.Fatalf("creating ESO's CRD %s: %v", crd.Name, err)
			}
		case err != nil:
			t.Fatal(err)
		default:
			cur.Spec, cur.Labels, cur.Annotations = crd.Spec, crd.Labels, crd.Annotations
			if err := s.c.Update(ctx, cur, client.FieldOwner("helm")); err != nil {
				t.Fatalf("restoring ESO's CRD %s: %v", crd.Name, err)
			}
		}
		s.waitEstablished(crd.Name)
	}
	for _, r := range esoServed {
		cur := &apiextensionsv1.CustomResourceDefinition{}
		if err := s.c.Get(ctx, client.ObjectKey{Name: r + ".external-secrets.io"}, cur); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Status.StoredVersions = []string{"v1beta1", "v1"}
		if err := s.c.Status().Patch(ctx, cur, patch); err != nil {
			t.Fatalf("setting %s status.storedVersions: %v", cur.Name, err)
		}
	}
}

func (s *suite) waitEstablished(name string) {
	s.t.Helper()
	s.poll("CRD "+name+" established", func(ctx context.Context) (bool, string) {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := s.c.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
			return false, err.Error()
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, ""
			}
		}
		return false, "not established"
	})
}

// installKeyferry runs docs/install.md's helm install with the test's
// image and extra values, waits for the operator Pod to be Ready, and
// uninstalls the release when the (sub)test ends.
func (s *suite) installKeyferry(values ...string) corev1.Pod {
	s.t.Helper()
	repo, tag := splitRef(s.imageRef)
	values = append([]string{"image.repository=" + repo, "image.tag=" + tag, "image.pullPolicy=Never"}, values...)
	s.helmRun("install", release, filepath.Join(s.root, "deploy", "chart", "keyferry"),
		"--namespace", namespace, "--create-namespace", "--set", strings.Join(values, ","))
	t := s.t
	t.Cleanup(func() {
		s.helmRun("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "2m")
		s.poll("the operator's Pods to go", func(ctx context.Context) (bool, string) {
			var pods corev1.PodList
			if err := s.c.List(ctx, &pods, client.InNamespace(namespace)); err != nil {
				return false, err.Error()
			}
			return len(pods.Items) == 0, fmt.Sprintf("%d pods left", len(pods.Items))
		})
	})
	t.Cleanup(func() { // runs before the uninstall
		if t.Failed() {
			t.Logf("---- operator pod logs\n%s", s.node.PodLogs(namespace, release))
		}
	})
	return s.waitOperatorReady("")
}

// helmOutput runs helm and returns its output and error, for a command
// that is meant to fail.
func (s *suite) helmOutput(args ...string) (string, error) {
	cmd := exec.Command(s.helm, args...)
	cmd.Env = append(os.Environ(), append(s.helmEnv, "KUBECONFIG="+s.node.Kubeconfig)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *suite) ensureNamespace(name string, labels map[string]string) {
	s.t.Helper()
	err := s.c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		s.t.Fatalf("creating namespace %s: %v", name, err)
	}
}

func (s *suite) fromYAML(y string) *unstructured.Unstructured {
	s.t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		s.t.Fatal(err)
	}
	return u
}

func (s *suite) applyYAML(ns, y string) {
	s.t.Helper()
	objs, err := manifest.Parse([]byte(y))
	if err != nil {
		s.t.Fatal(err)
	}
	if err := manifest.Apply(context.Background(), s.c, ns, objs); err != nil {
		s.t.Fatalf("applying: %v", err)
	}
}

// get reads an external-secrets.io/v1 object as it is stored.
func (s *suite) get(kind, ns, name string) *unstructured.Unstructured {
	s.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(esGVK.GroupVersion().WithKind(kind))
	if err := s.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		s.t.Fatalf("reading %s %s/%s: %v", kind, ns, name, err)
	}
	return u
}

func controllerRef(owner *unstructured.Unstructured) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{
		APIVersion: owner.GetAPIVersion(), Kind: owner.GetKind(), Name: owner.GetName(), UID: owner.GetUID(),
		Controller: &t, BlockOwnerDeletion: &t,
	}
}

// esoSecret creates the Secret exactly as ESO v2.9.0 leaves it for the
// ExternalSecret esName: ESO's managed label and data-hash annotation,
// written by ESO's field manager for that ExternalSecret; with
// creationPolicy Owner (owner not nil) also a controller ownerReference to
// the ExternalSecret and ESO's created-by label.
func (s *suite) esoSecret(ns, esName, name string, data map[string]string, owner *unstructured.Unstructured) {
	s.t.Helper()
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels:      map[string]string{engine.LabelManaged: engine.LabelManagedValue},
			Annotations: map[string]string{engine.AnnotationDataHash: hashOf(data)},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{},
	}
	for k, v := range data {
		sec.Data[k] = []byte(v)
	}
	if owner != nil {
		sec.Labels["reconcile.external-secrets.io/created-by"] = hashOf(map[string]string{ns: esName})[:32]
		sec.OwnerReferences = []metav1.OwnerReference{controllerRef(owner)}
	}
	err := s.c.Create(context.Background(), sec, client.FieldOwner(engine.ESOFieldManager(esName)))
	if err != nil && !apierrors.IsAlreadyExists(err) {
		s.t.Fatalf("creating ESO's Secret %s/%s: %v", ns, name, err)
	}
}

// hashOf stands in for ESO's hashes; keyferry reads them as opaque.
func hashOf(m map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(h, "%s=%s\n", k, m[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// versionsOf returns the resourceVersions of the Secrets.
func (s *suite) versionsOf(keys []client.ObjectKey) string {
	s.t.Helper()
	var out []string
	for _, k := range keys {
		var sec corev1.Secret
		if err := s.c.Get(context.Background(), k, &sec); err != nil {
			out = append(out, k.String()+"=missing")
			continue
		}
		out = append(out, k.String()+"="+sec.ResourceVersion)
	}
	return strings.Join(out, " ")
}

func (s *suite) waitESReady(ns, name string) {
	s.t.Helper()
	s.waitCondition("ExternalSecret", ns, name)
}

func (s *suite) waitStoreReady(ns, name string) {
	s.t.Helper()
	s.waitCondition("SecretStore", ns, name)
}

// waitCondition waits for the object's Ready condition to be True.
func (s *suite) waitCondition(kind, ns, name string) {
	s.t.Helper()
	s.poll(kind+" "+ns+"/"+name+" Ready", func(ctx context.Context) (bool, string) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(esGVK.GroupVersion().WithKind(kind))
		if err := s.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
			return false, err.Error()
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Ready" {
				return m["status"] == "True", fmt.Sprintf("Ready=%v reason=%v message=%v", m["status"], m["reason"], m["message"])
			}
		}
		return false, "no Ready condition"
	})
}

func hasProviderProperty(crd *apiextensionsv1.CustomResourceDefinition, name string) bool {
	for _, v := range crd.Spec.Versions {
		if v.Name != "v1" || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		provider := v.Schema.OpenAPIV3Schema.Properties["spec"].Properties["provider"]
		_, ok := provider.Properties[name]
		return ok
	}
	return false
}
