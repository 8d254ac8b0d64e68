package restart_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/operator"
	restartpolicy "github.com/keyferry/keyferry/internal/restart"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

var env *testenv.Env

// debounce is the window the tests run with: long enough that the writes
// of one rotation (two ExternalSecrets forced at once) fall into one window
// on a loaded machine.
const debounce = 3 * time.Second

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{
		// The deployment controller turns a restarted Deployment into a new
		// ReplicaSet, as in a real cluster.
		ControllerManager: true,
		ExtraControllers:  []string{"deployment"},
		Operator: func(o *operator.Options) {
			o.RestartWorkloads = true
			o.RestartDebounce = debounce
		},
	}, &env))
}

// TestEngineMarks keeps internal/restart's copy of the engine's marks in
// step: a managed Secret whose data-hash and data changed is a change.
func TestEngineMarks(t *testing.T) {
	secret := func(hash, value string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{engine.LabelManaged: engine.LabelManagedValue},
				Annotations: map[string]string{engine.AnnotationDataHash: hash}},
			Data: map[string][]byte{"k": []byte(value)},
		}
	}
	if !restartpolicy.ContentChanged(secret("a", "1"), secret("b", "2")) {
		t.Fatal("internal/restart does not read the engine's managed label and data-hash annotation")
	}
}

// store applies a SecretStore with the fake provider serving kv.
func store(t *testing.T, ns string, kv ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata:\n  name: store\nspec:\n  provider:\n    fake:\n      data:\n")
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "        - key: %q\n          value: %q\n", kv[i], kv[i+1])
	}
	env.Apply(t, ns, b.String())
}

// externalSecret applies an ExternalSecret writing the remote key to Secret
// name under key "value", refreshed only when forced.
func externalSecret(t *testing.T, ns, name, key string) {
	t.Helper()
	env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: %s
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data: [{secretKey: value, remoteRef: {key: %s}}]
`, name, key))
}

type podUse func(*corev1.PodSpec)

func envFrom(secret string) podUse {
	return func(s *corev1.PodSpec) {
		s.Containers[0].EnvFrom = append(s.Containers[0].EnvFrom, corev1.EnvFromSource{
			SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}})
	}
}

func volume(secret string) podUse {
	return func(s *corev1.PodSpec) {
		s.Volumes = append(s.Volumes, corev1.Volume{Name: secret, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}})
		s.Containers[0].VolumeMounts = append(s.Containers[0].VolumeMounts, corev1.VolumeMount{Name: secret, MountPath: "/secrets/" + secret})
	}
}

func template(name string, uses ...podUse) corev1.PodTemplateSpec {
	tpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
	}
	for _, u := range uses {
		u(&tpl.Spec)
	}
	return tpl
}

func deployment(t *testing.T, ns, name string, anns map[string]string, paused bool, uses ...podUse) {
	t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: anns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: template(name, uses...),
			Paused:   paused,
		},
	}
	if err := env.Client.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

func statefulSet(t *testing.T, ns, name string, anns map[string]string, uses ...podUse) {
	t.Helper()
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: anns},
		Spec: appsv1.StatefulSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: template(name, uses...),
		},
	}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func daemonSet(t *testing.T, ns, name string, anns map[string]string, uses ...podUse) {
	t.Helper()
	d := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: anns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: template(name, uses...),
		},
	}
	if err := env.Client.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

// workload reads a workload of kind ("Deployment", "StatefulSet",
// "DaemonSet") and returns its generation and pod template.
func workload(t *testing.T, kind, ns, name string) (int64, corev1.PodTemplateSpec) {
	t.Helper()
	key := client.ObjectKey{Namespace: ns, Name: name}
	ctx := context.Background()
	switch kind {
	case "StatefulSet":
		var s appsv1.StatefulSet
		if err := env.Client.Get(ctx, key, &s); err != nil {
			t.Fatal(err)
		}
		return s.Generation, s.Spec.Template
	case "DaemonSet":
		var d appsv1.DaemonSet
		if err := env.Client.Get(ctx, key, &d); err != nil {
			t.Fatal(err)
		}
		return d.Generation, d.Spec.Template
	}
	var d appsv1.Deployment
	if err := env.Client.Get(ctx, key, &d); err != nil {
		t.Fatal(err)
	}
	return d.Generation, d.Spec.Template
}

func restartedAt(t *testing.T, kind, ns, name string) string {
	t.Helper()
	_, tpl := workload(t, kind, ns, name)
	return tpl.Annotations[restartpolicy.AnnotationRestartedAt]
}

// waitRestarted waits until the workload's pod template carries
// keyferry.io/restartedAt.
func waitRestarted(t *testing.T, kind, ns, name string) {
	t.Helper()
	testenv.Eventually(t, kind+" "+name+" restarted", func(context.Context) (bool, string) {
		v := restartedAt(t, kind, ns, name)
		return v != "", "no " + restartpolicy.AnnotationRestartedAt + " on the pod template"
	})
}

// waitIdle waits until the restart controller has nothing left to do.
func waitIdle(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, "the restart controller to be idle", func(context.Context) (bool, string) {
		n := env.Op.Restart.Pending()
		return n == 0, fmt.Sprintf("%d pending", n)
	})
}

// rotateMarker changes the value of the Secret that ExternalSecret marker
// writes and waits until Deployment marker restarted for it. Events reach
// the restart controller in order, so everything the controller was told
// before the marker changed has been decided by then; waitIdle then waits
// for the restarts it scheduled. kv is the rest of the store's data.
func rotateMarker(t *testing.T, ns, value string, kv ...string) {
	t.Helper()
	before, _ := workload(t, "Deployment", ns, "marker")
	store(t, ns, append(kv, "marker", value)...)
	env.ForceSync(t, ns, "marker")
	env.WaitSecret(t, ns, "marker", testenv.HasData(map[string]string{"value": value}))
	testenv.Eventually(t, "Deployment marker restarted", func(context.Context) (bool, string) {
		gen, _ := workload(t, "Deployment", ns, "marker")
		return gen > before, fmt.Sprintf("generation %d", gen)
	})
	waitIdle(t)
}

// replicaSets lists the ReplicaSets the deployment controller made for
// Deployment name.
func replicaSets(t *testing.T, ns, name string) []appsv1.ReplicaSet {
	t.Helper()
	var list appsv1.ReplicaSetList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{"app": name}); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// waitEvents waits until at least n Events with reason are about an object
// and returns their notes (Events are written asynchronously).
func waitEvents(t *testing.T, ns, name, reason string, n int) []string {
	t.Helper()
	var notes []string
	testenv.Eventually(t, fmt.Sprintf("%d %s Events about %s", n, reason, name), func(ctx context.Context) (bool, string) {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			return false, err.Error()
		}
		notes = notes[:0]
		for _, ev := range evs {
			if ev.Reason == reason {
				notes = append(notes, ev.Note)
			}
		}
		return len(notes) >= n, fmt.Sprintf("%q", notes)
	})
	return notes
}

func TestRotationRestartsExactlyTheAnnotatedWorkloadsOnce(t *testing.T) {
	ns := env.Namespace(t)
	auto := map[string]string{restartpolicy.AnnotationAuto: "true"}
	// The workloads exist before their Secret: its creation restarts none.
	deployment(t, ns, "auto", auto, false, envFrom("db"))
	deployment(t, ns, "named", map[string]string{restartpolicy.AnnotationSecretReload: "cache, db"}, false)
	deployment(t, ns, "plain", nil, false, envFrom("db"))
	deployment(t, ns, "other", auto, false, envFrom("unrelated"))
	deployment(t, ns, "paused", auto, true, envFrom("db"))
	deployment(t, ns, "marker", auto, false, envFrom("marker"))
	statefulSet(t, ns, "sts", map[string]string{restartpolicy.AnnotationSecretAuto: "true"}, volume("db"))
	daemonSet(t, ns, "ds", auto, volume("db"))
	// A workload of another namespace that uses a Secret of the same name
	// is another tenant's: never restarted.
	otherNS := env.Namespace(t)
	deployment(t, otherNS, "auto", auto, false, envFrom("db"))

	store(t, ns, "db", "v1", "marker", "m1")
	externalSecret(t, ns, "db", "db")
	externalSecret(t, ns, "marker", "marker")
	first := env.WaitSecret(t, ns, "db", testenv.HasData(map[string]string{"value": "v1"}))
	env.WaitSecret(t, ns, "marker", testenv.HasData(map[string]string{"value": "m1"}))

	// A refresh that finds the same value writes nothing; an edit of the
	// Secret by someone else (a label) is a write that keeps the hash.
	// Neither restarts anything.
	calls := env.Op.Fetch.Calls("SecretStore", ns, "store")
	env.ForceSync(t, ns, "db")
	testenv.Eventually(t, "the forced refresh to fetch", func(context.Context) (bool, string) {
		n := env.Op.Fetch.Calls("SecretStore", ns, "store")
		return n > calls, fmt.Sprintf("%d calls", n)
	})
	edited := env.GetSecret(t, ns, "db")
	edited.Labels["team"] = "payments"
	if err := env.Client.Update(context.Background(), edited); err != nil {
		t.Fatal(err)
	}
	rotateMarker(t, ns, "m2", "db", "v1")
	if got := env.GetSecret(t, ns, "db"); got.Annotations[engine.AnnotationDataHash] != first.Annotations[engine.AnnotationDataHash] {
		t.Fatal("the no-op refresh changed the Secret's data hash")
	}
	for _, w := range [][2]string{{"Deployment", "auto"}, {"Deployment", "named"}, {"StatefulSet", "sts"}, {"DaemonSet", "ds"}} {
		if v := restartedAt(t, w[0], ns, w[1]); v != "" {
			t.Fatalf("%s %s was restarted by the Secret's creation or a no-op write (restartedAt %s)", w[0], w[1], v)
		}
	}

	// The rotation.
	store(t, ns, "db", "v2", "marker", "m2")
	env.ForceSync(t, ns, "db")
	env.WaitSecret(t, ns, "db", testenv.HasData(map[string]string{"value": "v2"}))
	written := time.Now()
	for _, w := range [][2]string{{"Deployment", "auto"}, {"Deployment", "named"}, {"StatefulSet", "sts"}, {"DaemonSet", "ds"}} {
		waitRestarted(t, w[0], ns, w[1])
	}
	t.Logf("4 workloads restarted %v after the Secret was rewritten (debounce window %v)", time.Since(written).Round(10*time.Millisecond), debounce)
	rotateMarker(t, ns, "m3", "db", "v2")

	// Exactly the annotated workloads restarted, each once: one template
	// change on top of the created generation.
	for _, w := range [][2]string{{"Deployment", "auto"}, {"Deployment", "named"}, {"StatefulSet", "sts"}, {"DaemonSet", "ds"}} {
		gen, tpl := workload(t, w[0], ns, w[1])
		if gen != 2 {
			t.Errorf("%s %s: generation %d, want 2 (created, restarted once)", w[0], w[1], gen)
		}
		if _, err := time.Parse(time.RFC3339, tpl.Annotations[restartpolicy.AnnotationRestartedAt]); err != nil {
			t.Errorf("%s %s: restartedAt is not RFC3339: %v", w[0], w[1], err)
		}
		if notes := waitEvents(t, ns, w[1], "Restarted", 1); len(notes) != 1 || !strings.Contains(notes[0], "Secret db changed") {
			t.Errorf("%s %s: Restarted Events %q, want one naming Secret db", w[0], w[1], notes)
		}
	}
	if gen, _ := workload(t, "Deployment", otherNS, "auto"); gen != 1 {
		t.Errorf("a Deployment in namespace %s was restarted for a Secret of namespace %s", otherNS, ns)
	}
	for _, name := range []string{"plain", "other", "paused"} {
		gen, tpl := workload(t, "Deployment", ns, name)
		if gen != 1 || tpl.Annotations[restartpolicy.AnnotationRestartedAt] != "" {
			t.Errorf("Deployment %s was touched: generation %d, restartedAt %q", name, gen, tpl.Annotations[restartpolicy.AnnotationRestartedAt])
		}
	}
	if notes := waitEvents(t, ns, "paused", "RestartSkipped", 1); len(notes) != 1 || !strings.Contains(notes[0], "paused") {
		t.Errorf("paused Deployment: RestartSkipped Events %q, want one", notes)
	}
	// The deployment controller rolled the restarted Deployment out: a new
	// ReplicaSet whose pods carry the annotation.
	testenv.Eventually(t, "a second ReplicaSet for Deployment auto", func(context.Context) (bool, string) {
		rss := replicaSets(t, ns, "auto")
		var annotated int
		for _, rs := range rss {
			if rs.Spec.Template.Annotations[restartpolicy.AnnotationRestartedAt] != "" {
				annotated++
			}
		}
		return len(rss) == 2 && annotated == 1, fmt.Sprintf("%d ReplicaSets, %d with restartedAt", len(rss), annotated)
	})
	// The Secret says which workloads restarted because of it.
	notes := waitEvents(t, ns, "db", "WorkloadRestarted", 4)
	for _, w := range []string{"Deployment/auto", "Deployment/named", "StatefulSet/sts", "DaemonSet/ds"} {
		if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, w+" ") }) {
			t.Errorf("no WorkloadRestarted Event on Secret db for %s: %q", w, notes)
		}
	}
	if got := len(notes); got != 4 {
		t.Errorf("%d WorkloadRestarted Events on Secret db, want 4: %q", got, notes)
	}
}

func TestOneRotationOfTwoSecretsRestartsOnce(t *testing.T) {
	ns := env.Namespace(t)
	deployment(t, ns, "app", map[string]string{restartpolicy.AnnotationAuto: "true"}, false, envFrom("a"), volume("b"))
	// One entry of its list is not a regular expression: the other still
	// counts, and a Warning says which one is wrong.
	deployment(t, ns, "listed", map[string]string{restartpolicy.AnnotationSecretReload: "a(, b"}, false)
	deployment(t, ns, "marker", map[string]string{restartpolicy.AnnotationAuto: "true"}, false, envFrom("marker"))
	store(t, ns, "shared", "v1", "marker", "m1")
	externalSecret(t, ns, "a", "shared")
	externalSecret(t, ns, "b", "shared")
	externalSecret(t, ns, "marker", "marker")
	env.WaitSecret(t, ns, "a", testenv.HasData(map[string]string{"value": "v1"}))
	env.WaitSecret(t, ns, "b", testenv.HasData(map[string]string{"value": "v1"}))
	env.WaitSecret(t, ns, "marker", testenv.HasData(map[string]string{"value": "m1"}))

	// The shared value rotates: both ExternalSecrets rewrite their Secret.
	const canary = "CANARY-5b0c-rotated-value"
	store(t, ns, "shared", canary, "marker", "m1")
	env.ForceSync(t, ns, "a")
	env.ForceSync(t, ns, "b")
	env.WaitSecret(t, ns, "a", testenv.HasData(map[string]string{"value": canary}))
	env.WaitSecret(t, ns, "b", testenv.HasData(map[string]string{"value": canary}))
	waitRestarted(t, "Deployment", ns, "app")
	rotateMarker(t, ns, "m2", "shared", canary)

	gen, _ := workload(t, "Deployment", ns, "app")
	if gen != 2 {
		t.Fatalf("generation %d, want 2: two changed Secrets restarted the Deployment more than once", gen)
	}
	notes := waitEvents(t, ns, "app", "Restarted", 1)
	if len(notes) != 1 || !strings.Contains(notes[0], "Secret a, b changed") {
		t.Fatalf("Restarted Events %q, want one naming Secrets a and b", notes)
	}
	if gen, _ := workload(t, "Deployment", ns, "listed"); gen != 2 {
		t.Errorf("Deployment listed: generation %d, want 2 (restarted once, for b)", gen)
	}
	if notes := waitEvents(t, ns, "listed", "InvalidReloadAnnotation", 1); !strings.Contains(notes[0], `"a("`) {
		t.Errorf("InvalidReloadAnnotation Events %q do not name the bad entry", notes)
	}
	testenv.Eventually(t, "two ReplicaSets for Deployment app", func(context.Context) (bool, string) {
		n := len(replicaSets(t, ns, "app"))
		return n == 2, fmt.Sprintf("%d ReplicaSets", n)
	})
	env.AssertNoLeak(t, canary)
	for _, name := range []string{"app", "a", "b"} {
		evs, err := env.Events(context.Background(), ns, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if strings.Contains(ev.Note, canary) {
				t.Fatalf("the Secret's value appeared in Event %s about %s", ev.Reason, name)
			}
		}
	}
}

func TestIgnoredSecretRestartsNothing(t *testing.T) {
	ns := env.Namespace(t)
	deployment(t, ns, "app", map[string]string{restartpolicy.AnnotationAuto: "true"}, false, envFrom("db"))
	deployment(t, ns, "marker", map[string]string{restartpolicy.AnnotationAuto: "true"}, false, envFrom("marker"))
	store(t, ns, "db", "v1", "marker", "m1")
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: db
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  target:
    template:
      metadata:
        annotations: {reloader.stakater.com/ignore: "true"}
  data: [{secretKey: value, remoteRef: {key: db}}]
`)
	externalSecret(t, ns, "marker", "marker")
	env.WaitSecret(t, ns, "db", testenv.HasData(map[string]string{"value": "v1"}))
	env.WaitSecret(t, ns, "marker", testenv.HasData(map[string]string{"value": "m1"}))

	store(t, ns, "db", "v2", "marker", "m1")
	env.ForceSync(t, ns, "db")
	env.WaitSecret(t, ns, "db", testenv.HasData(map[string]string{"value": "v2"}))
	rotateMarker(t, ns, "m2", "db", "v2")
	if gen, tpl := workload(t, "Deployment", ns, "app"); gen != 1 || tpl.Annotations[restartpolicy.AnnotationRestartedAt] != "" {
		t.Fatalf("a Secret with %s restarted Deployment app (generation %d)", restartpolicy.AnnotationIgnore, gen)
	}
}

func TestEditedAndRestoredSecretRestartsNothing(t *testing.T) {
	ns := env.Namespace(t)
	deployment(t, ns, "app", map[string]string{restartpolicy.AnnotationAuto: "true"}, false, envFrom("db"))
	deployment(t, ns, "marker", map[string]string{restartpolicy.AnnotationAuto: "true"}, false, envFrom("marker"))
	store(t, ns, "db", "v1", "marker", "m1")
	externalSecret(t, ns, "db", "db")
	externalSecret(t, ns, "marker", "marker")
	s := env.WaitSecret(t, ns, "db", testenv.HasData(map[string]string{"value": "v1"}))
	env.WaitSecret(t, ns, "marker", testenv.HasData(map[string]string{"value": "m1"}))

	// Someone edits the data; keyferry puts its content back. Neither write
	// changes the hash of what keyferry wrote.
	s.Data["value"] = []byte("tampered")
	if err := env.Client.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	env.ForceSync(t, ns, "db")
	env.WaitSecret(t, ns, "db", testenv.HasData(map[string]string{"value": "v1"}))
	rotateMarker(t, ns, "m2", "db", "v1")
	if gen, tpl := workload(t, "Deployment", ns, "app"); gen != 1 || tpl.Annotations[restartpolicy.AnnotationRestartedAt] != "" {
		t.Fatalf("an edit and its restoration restarted Deployment app (generation %d)", gen)
	}
}

// rolloutCRD is a stand-in for Argo Rollouts' CRD: the same group, version,
// kind and resource, with a schema that keeps any spec (the restart
// controller reads spec.template, spec.paused and spec.workloadRef).
const rolloutCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: rollouts.argoproj.io
spec:
  group: argoproj.io
  names: {kind: Rollout, listKind: RolloutList, plural: rollouts, singular: rollout}
  scope: Namespaced
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
            status: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

func rollout(name, spec string) string {
	return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: %s
  annotations: {reloader.stakater.com/auto: "true"}
spec:
%s`, name, spec)
}

const rolloutTemplate = `  selector: {matchLabels: {app: ro}}
  template:
    metadata: {labels: {app: ro}}
    spec:
      containers:
        - name: app
          image: registry.invalid/app:1
          envFrom: [{secretRef: {name: db}}]
`

// rolloutRestartedAt reads a Rollout's pod-template restartedAt.
func rolloutRestartedAt(t *testing.T, ns, name string) string {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout"})
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	v, _, _ := unstructured.NestedString(u.Object, "spec", "template", "metadata", "annotations", restartpolicy.AnnotationRestartedAt)
	return v
}

func TestArgoRolloutRestartsWhereItsCRDIsInstalled(t *testing.T) {
	env.Apply(t, "", rolloutCRD)
	testenv.Eventually(t, "the Rollout CRD to be served", func(ctx context.Context) (bool, string) {
		u := &unstructured.UnstructuredList{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "RolloutList"})
		err := env.Client.List(ctx, u)
		return err == nil, fmt.Sprint(err)
	})
	ns := env.Namespace(t)
	deployment(t, ns, "marker", map[string]string{restartpolicy.AnnotationAuto: "true"}, false, envFrom("marker"))
	env.Apply(t, ns, rollout("ro", rolloutTemplate))
	env.Apply(t, ns, rollout("paused", "  paused: true\n"+rolloutTemplate))
	// Its pods come from a Deployment: keyferry restarts that one, never
	// adds a template to the Rollout.
	env.Apply(t, ns, rollout("by-ref", "  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n"))
	store(t, ns, "db", "v1", "marker", "m1")
	externalSecret(t, ns, "db", "db")
	externalSecret(t, ns, "marker", "marker")
	env.WaitSecret(t, ns, "db", testenv.HasData(map[string]string{"value": "v1"}))
	env.WaitSecret(t, ns, "marker", testenv.HasData(map[string]string{"value": "m1"}))

	store(t, ns, "db", "v2", "marker", "m1")
	env.ForceSync(t, ns, "db")
	testenv.Eventually(t, "Rollout ro restarted", func(context.Context) (bool, string) {
		return rolloutRestartedAt(t, ns, "ro") != "", "no " + restartpolicy.AnnotationRestartedAt
	})
	rotateMarker(t, ns, "m2", "db", "v2")
	if v := rolloutRestartedAt(t, ns, "paused"); v != "" {
		t.Errorf("a paused Rollout was restarted (%s)", v)
	}
	if notes := waitEvents(t, ns, "paused", "RestartSkipped", 1); len(notes) != 1 {
		t.Errorf("paused Rollout: RestartSkipped Events %q, want one", notes)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout"})
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "by-ref"}, u); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "template"); found {
		t.Error("a Rollout with workloadRef got a pod template")
	}
	if notes := waitEvents(t, ns, "ro", "Restarted", 1); len(notes) != 1 || !strings.Contains(notes[0], "Secret db changed") {
		t.Errorf("Rollout ro: Restarted Events %q", notes)
	}
}

func TestExampleRestartsTheDeploymentWhenItsSecretRotates(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, "examples/restarts")
	env.WaitSecret(t, ns, "api-key", testenv.HasData(map[string]string{"API_KEY": "first-not-a-real-key"}))
	if v := restartedAt(t, "Deployment", ns, "web"); v != "" {
		t.Fatalf("the Secret's creation restarted the Deployment (%s)", v)
	}
	// The key rotates in the store.
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: restarts-demo
spec:
  provider:
    fake:
      data:
        - key: /demo/api-key
          value: second-not-a-real-key
`)
	env.ForceSync(t, ns, "api-key")
	env.WaitSecret(t, ns, "api-key", testenv.HasData(map[string]string{"API_KEY": "second-not-a-real-key"}))
	waitRestarted(t, "Deployment", ns, "web")
	waitIdle(t)
	if gen, _ := workload(t, "Deployment", ns, "web"); gen != 2 {
		t.Fatalf("generation %d, want 2: restarted once", gen)
	}
	waitEvents(t, ns, "web", "Restarted", 1)
	waitEvents(t, ns, "api-key", "WorkloadRestarted", 1)
}
