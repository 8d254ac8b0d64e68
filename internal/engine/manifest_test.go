package engine

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

func configMapPlan() Plan {
	return Plan{
		Owner:  Owner{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Namespace: "ns", Name: "app", UID: "uid-app"},
		Target: Target{Name: "cm", ManagedBy: "ExternalSecret/app", DeletionPolicy: esv1.DeletionPolicyRetain, Manifest: &Manifest{APIVersion: "v1", Kind: "ConfigMap"}},
	}
}

func cm(mut func(*corev1.ConfigMap)) *corev1.ConfigMap {
	c := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"}, Data: map[string]string{"k": "v"}}
	if mut != nil {
		mut(c)
	}
	return c
}

func TestManifestWriteChecks(t *testing.T) {
	controlledBy := func(uid string) func(*corev1.ConfigMap) {
		return func(c *corev1.ConfigMap) {
			c.OwnerReferences = []metav1.OwnerReference{{Kind: "ExternalSecret", Name: "x", UID: types.UID(uid), Controller: ptr(true)}}
		}
	}
	annotated := func(k, v string) func(*corev1.ConfigMap) {
		return func(c *corev1.ConfigMap) { c.Annotations = map[string]string{k: v} }
	}
	tests := []struct {
		name    string
		check   manifestCheck
		current *corev1.ConfigMap
		next    *corev1.ConfigMap
		gone    bool
		deleteP esv1.DeletionPolicy
		reason  string // "" when the write may happen
	}{
		{name: "manifestNeverTakenOver: controlled by the owner", check: manifestNeverTakenOver, current: cm(controlledBy("uid-app"))},
		{name: "manifestNeverTakenOver: owner annotation", check: manifestNeverTakenOver, current: cm(annotated(AnnotationOwner, "ExternalSecret/app"))},
		{name: "manifestNeverTakenOver: adopt annotation", check: manifestNeverTakenOver, current: cm(annotated(AnnotationAdopt, "ExternalSecret/app"))},
		{name: "manifestNeverTakenOver: unowned", check: manifestNeverTakenOver, current: cm(nil), reason: ReasonSecretNotOwned},
		{name: "manifestNeverTakenOver: another ExternalSecret's", check: manifestNeverTakenOver, current: cm(controlledBy("uid-other")), reason: ReasonSecretNotOwned},
		{name: "manifestNeverTakenOver: adopt names another", check: manifestNeverTakenOver, current: cm(annotated(AnnotationAdopt, "ExternalSecret/other")), reason: ReasonSecretNotOwned},
		{name: "manifestNeverTakenOver: managed label alone is not ownership", check: manifestNeverTakenOver, current: cm(func(c *corev1.ConfigMap) {
			c.Labels = map[string]string{LabelManaged: LabelManagedValue}
		}), reason: ReasonSecretNotOwned},
		{name: "manifestNeverBlank: keys to no keys", check: manifestNeverBlank, current: cm(nil), next: cm(func(c *corev1.ConfigMap) { c.Data = nil }), reason: ReasonWouldBeEmpty},
		{name: "manifestNeverBlank: binary keys count", check: manifestNeverBlank, current: cm(func(c *corev1.ConfigMap) { c.Data, c.BinaryData = nil, map[string][]byte{"b": {0xff}} }), next: cm(func(c *corev1.ConfigMap) { c.Data = nil }), reason: ReasonWouldBeEmpty},
		{name: "manifestNeverBlank: empty stays empty", check: manifestNeverBlank, current: cm(func(c *corev1.ConfigMap) { c.Data = nil }), next: cm(func(c *corev1.ConfigMap) { c.Data = nil })},
		{name: "manifestNeverBlank: all gone under deletionPolicy Merge", check: manifestNeverBlank, current: cm(nil), next: cm(func(c *corev1.ConfigMap) { c.Data = nil }), gone: true, deleteP: esv1.DeletionPolicyMerge},
		{name: "manifestNeverBlank: all gone under Retain", check: manifestNeverBlank, current: cm(nil), next: cm(func(c *corev1.ConfigMap) { c.Data = nil }), gone: true, reason: ReasonWouldBeEmpty},
		{name: "manifestImmutableNeverChanges: mutable", check: manifestImmutableNeverChanges, current: cm(nil), next: cm(nil)},
		{name: "manifestImmutableNeverChanges: immutable", check: manifestImmutableNeverChanges, current: cm(func(c *corev1.ConfigMap) { c.Immutable = ptr(true) }), next: cm(nil), reason: ReasonSecretImmutable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := configMapPlan()
			if tt.deleteP != "" {
				p.Target.DeletionPolicy = tt.deleteP
			}
			w := &manifestWrite{plan: p, kind: "ConfigMap", current: tt.current, gone: tt.gone}
			w.currentKeys = len(tt.current.Data) + len(tt.current.BinaryData)
			w.immutable = tt.current.Immutable != nil && *tt.current.Immutable
			if tt.next != nil {
				w.nextKeys = len(tt.next.Data) + len(tt.next.BinaryData)
			}
			err := tt.check(w)
			switch {
			case tt.reason == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.reason != "" && err == nil:
				t.Fatal("allowed")
			case tt.reason != "" && err.Reason != tt.reason:
				t.Fatalf("reason = %s (%v), want %s", err.Reason, err, tt.reason)
			}
		})
	}
}

func TestConfigMapDataSplitsUTF8FromBinary(t *testing.T) {
	data, bin := configMapData(map[string][]byte{"text": []byte("héllo"), "empty": {}, "raw": {0xff, 0xfe}})
	if len(data) != 2 || data["text"] != "héllo" || data["empty"] != "" {
		t.Errorf("data = %v", data)
	}
	if len(bin) != 1 || string(bin["raw"]) != "\xff\xfe" {
		t.Errorf("binaryData = %v", bin)
	}
	if d, b := configMapData(nil); d != nil || b != nil {
		t.Errorf("no keys gave %v %v", d, b)
	}
}

func TestSameConfigMapIgnoresOnlyTheHash(t *testing.T) {
	base := cm(func(c *corev1.ConfigMap) {
		c.Annotations = map[string]string{AnnotationDataHash: "a"}
		c.BinaryData = map[string][]byte{"b": {1}}
	})
	tests := []struct {
		name string
		mut  func(*corev1.ConfigMap)
		same bool
	}{
		{"identical", func(*corev1.ConfigMap) {}, true},
		{"hash differs", func(c *corev1.ConfigMap) { c.Annotations[AnnotationDataHash] = "b" }, true},
		{"data differs", func(c *corev1.ConfigMap) { c.Data["k"] = "w" }, false},
		{"binary data differs", func(c *corev1.ConfigMap) { c.BinaryData["b"] = []byte{2} }, false},
		{"label added", func(c *corev1.ConfigMap) { c.Labels = map[string]string{"x": "y"} }, false},
		{"owner reference added", func(c *corev1.ConfigMap) { c.OwnerReferences = []metav1.OwnerReference{{UID: "u"}} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := base.DeepCopy()
			tt.mut(other)
			if got := sameConfigMap(base, other); got != tt.same {
				t.Fatalf("sameConfigMap = %v, want %v", got, tt.same)
			}
		})
	}
}

func TestManifestNeverTakenOverNamesTheKind(t *testing.T) {
	p := objectPlan(nil)
	theirs := &unstructured.Unstructured{Object: map[string]any{}}
	theirs.SetName("app-settings")
	err := manifestNeverTakenOver(&manifestWrite{plan: p, kind: "AppConfig", current: theirs, currentKeys: 1})
	if err == nil || err.Reason != ReasonSecretNotOwned || !strings.Contains(err.Error(), `AppConfig "app-settings"`) || !strings.Contains(err.Error(), AnnotationAdopt) {
		t.Fatalf("err = %v", err)
	}
	theirs.SetAnnotations(map[string]string{AnnotationOwner: "ExternalSecret/app"})
	if err := manifestNeverTakenOver(&manifestWrite{plan: p, kind: "AppConfig", current: theirs}); err != nil {
		t.Fatalf("owner annotation refused: %v", err)
	}
	// Nothing left to write into an object that has content: refused.
	if err := manifestNeverBlank(&manifestWrite{plan: p, kind: "AppConfig", current: theirs, currentKeys: 1}); err == nil || err.Reason != ReasonWouldBeEmpty {
		t.Fatalf("blank write: err = %v", err)
	}
}
