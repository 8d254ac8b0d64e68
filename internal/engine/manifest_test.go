package engine

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

func TestConfigMapWriteChecks(t *testing.T) {
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
		check   configMapCheck
		current *corev1.ConfigMap
		next    *corev1.ConfigMap
		gone    bool
		deleteP esv1.DeletionPolicy
		reason  string // "" when the write may happen
	}{
		{name: "configMapNeverTakenOver: controlled by the owner", check: configMapNeverTakenOver, current: cm(controlledBy("uid-app"))},
		{name: "configMapNeverTakenOver: owner annotation", check: configMapNeverTakenOver, current: cm(annotated(AnnotationOwner, "ExternalSecret/app"))},
		{name: "configMapNeverTakenOver: adopt annotation", check: configMapNeverTakenOver, current: cm(annotated(AnnotationAdopt, "ExternalSecret/app"))},
		{name: "configMapNeverTakenOver: unowned", check: configMapNeverTakenOver, current: cm(nil), reason: ReasonSecretNotOwned},
		{name: "configMapNeverTakenOver: another ExternalSecret's", check: configMapNeverTakenOver, current: cm(controlledBy("uid-other")), reason: ReasonSecretNotOwned},
		{name: "configMapNeverTakenOver: adopt names another", check: configMapNeverTakenOver, current: cm(annotated(AnnotationAdopt, "ExternalSecret/other")), reason: ReasonSecretNotOwned},
		{name: "configMapNeverTakenOver: managed label alone is not ownership", check: configMapNeverTakenOver, current: cm(func(c *corev1.ConfigMap) {
			c.Labels = map[string]string{LabelManaged: LabelManagedValue}
		}), reason: ReasonSecretNotOwned},
		{name: "configMapNeverBlank: keys to no keys", check: configMapNeverBlank, current: cm(nil), next: cm(func(c *corev1.ConfigMap) { c.Data = nil }), reason: ReasonWouldBeEmpty},
		{name: "configMapNeverBlank: binary keys count", check: configMapNeverBlank, current: cm(func(c *corev1.ConfigMap) { c.Data, c.BinaryData = nil, map[string][]byte{"b": {0xff}} }), next: cm(func(c *corev1.ConfigMap) { c.Data = nil }), reason: ReasonWouldBeEmpty},
		{name: "configMapNeverBlank: empty stays empty", check: configMapNeverBlank, current: cm(func(c *corev1.ConfigMap) { c.Data = nil }), next: cm(func(c *corev1.ConfigMap) { c.Data = nil })},
		{name: "configMapNeverBlank: all gone under deletionPolicy Merge", check: configMapNeverBlank, current: cm(nil), next: cm(func(c *corev1.ConfigMap) { c.Data = nil }), gone: true, deleteP: esv1.DeletionPolicyMerge},
		{name: "configMapNeverBlank: all gone under Retain", check: configMapNeverBlank, current: cm(nil), next: cm(func(c *corev1.ConfigMap) { c.Data = nil }), gone: true, reason: ReasonWouldBeEmpty},
		{name: "configMapImmutableNeverChanges: mutable", check: configMapImmutableNeverChanges, current: cm(nil), next: cm(nil)},
		{name: "configMapImmutableNeverChanges: immutable", check: configMapImmutableNeverChanges, current: cm(func(c *corev1.ConfigMap) { c.Immutable = ptr(true) }), next: cm(nil), reason: ReasonSecretImmutable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := configMapPlan()
			if tt.deleteP != "" {
				p.Target.DeletionPolicy = tt.deleteP
			}
			err := tt.check(&configMapWrite{plan: p, current: tt.current, next: tt.next, gone: tt.gone})
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
