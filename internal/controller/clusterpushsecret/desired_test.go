package clusterpushsecret

import (
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
)

func ns(name string, labels ...string) corev1.Namespace {
	n := corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	for i := 0; i+1 < len(labels); i += 2 {
		n.Labels[labels[i]] = labels[i+1]
	}
	return n
}

func TestSelectNamespaces(t *testing.T) {
	now := metav1.NewTime(time.Unix(1700000000, 0))
	terminating := ns("dying", "cool", "label")
	terminating.DeletionTimestamp = &now
	all := []corev1.Namespace{ns("a1", "cool", "label"), ns("a2", "cool", "label", "env", "prod"), ns("b1", "team", "b"), ns("plain"), terminating}
	cool := &metav1.LabelSelector{MatchLabels: map[string]string{"cool": "label"}}
	teamB := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}
	tests := []struct {
		name      string
		selectors []*metav1.LabelSelector
		want      []string
		empty     bool
	}{
		{"no selector selects nothing", nil, nil, true},
		{"a null selector selects nothing", []*metav1.LabelSelector{nil}, nil, true},
		{"selectors are ORed", []*metav1.LabelSelector{cool, teamB}, []string{"a1", "a2", "b1"}, false},
		{"labels of one selector are ANDed", []*metav1.LabelSelector{{MatchLabels: map[string]string{"cool": "label", "env": "prod"}}}, []string{"a2"}, false},
		{"matchExpressions", []*metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpExists}}}}, []string{"b1"}, false},
		{"an empty selector selects every namespace but a terminating one", []*metav1.LabelSelector{{}}, []string{"a1", "a2", "b1", "plain"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cps := &esv1alpha1.ClusterPushSecret{Spec: esv1alpha1.ClusterPushSecretSpec{NamespaceSelectors: tt.selectors}}
			sel, err := NewSelector(cps)
			if err != nil {
				t.Fatal(err)
			}
			if got := SelectNamespaces(sel, all); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("selected %v; want %v", got, tt.want)
			}
			if sel.Empty() != tt.empty {
				t.Errorf("Empty() = %v", sel.Empty())
			}
		})
	}
}

func TestPushSecretName(t *testing.T) {
	cps := &esv1alpha1.ClusterPushSecret{ObjectMeta: metav1.ObjectMeta{Name: "hello-world"}}
	if got := PushSecretName(cps); got != "hello-world" {
		t.Errorf("default name = %q; want the ClusterPushSecret's", got)
	}
	cps.Spec.PushSecretName = "hello-world-ps"
	if got := PushSecretName(cps); got != "hello-world-ps" {
		t.Errorf("name = %q; want spec.pushSecretName", got)
	}
}

func exampleCPS() *esv1alpha1.ClusterPushSecret {
	return &esv1alpha1.ClusterPushSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-world", UID: types.UID("cps-uid")},
		Spec: esv1alpha1.ClusterPushSecretSpec{
			PushSecretName:     "hello-world-ps",
			PushSecretMetadata: esv1alpha1.PushSecretMetadata{Labels: map[string]string{"l": "1"}, Annotations: map[string]string{"a": "1"}},
			PushSecretSpec: esv1alpha1.PushSecretSpec{
				SecretStoreRefs: []esv1alpha1.PushSecretStoreRef{{Name: "store", Kind: "SecretStore"}},
				Selector:        esv1alpha1.PushSecretSelector{Secret: &esv1alpha1.PushSecretSecret{Name: "source-secret"}},
			},
		},
	}
}

func TestDesiredPushSecret(t *testing.T) {
	cps := exampleCPS()
	ps := DesiredPushSecret(cps, "team-a")
	if ps.Namespace != "team-a" || ps.Name != "hello-world-ps" {
		t.Errorf("PushSecret %s/%s; want team-a/hello-world-ps", ps.Namespace, ps.Name)
	}
	if !reflect.DeepEqual(ps.Labels, map[string]string{"l": "1"}) || !reflect.DeepEqual(ps.Annotations, map[string]string{"a": "1"}) {
		t.Errorf("metadata %v %v; want pushSecretMetadata's", ps.Labels, ps.Annotations)
	}
	if !reflect.DeepEqual(ps.Spec, cps.Spec.PushSecretSpec) {
		t.Errorf("spec %+v; want pushSecretSpec", ps.Spec)
	}
	ref := metav1.GetControllerOf(ps)
	if ref == nil || ref.UID != cps.UID || ref.Kind != "ClusterPushSecret" || ref.APIVersion != "external-secrets.io/v1alpha1" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("controller reference %+v; want the ClusterPushSecret, blocking owner deletion", ref)
	}
	// The PushSecret does not share maps with the ClusterPushSecret.
	ps.Labels["l"] = "changed"
	ps.Spec.SecretStoreRefs[0].Name = "changed"
	if cps.Spec.PushSecretMetadata.Labels["l"] != "1" || cps.Spec.PushSecretSpec.SecretStoreRefs[0].Name != "store" {
		t.Error("DesiredPushSecret shares memory with the ClusterPushSecret")
	}
}

func withController(ps *esv1alpha1.PushSecret, kind, name, uid string) *esv1alpha1.PushSecret {
	t := true
	ps.OwnerReferences = []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1alpha1", Kind: kind, Name: name, UID: types.UID(uid), Controller: &t}}
	return ps
}

func TestOwnershipAndConflictReason(t *testing.T) {
	cps := exampleCPS()
	plain := func() *esv1alpha1.PushSecret {
		return &esv1alpha1.PushSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "hello-world-ps"}}
	}
	tests := []struct {
		name     string
		ps       *esv1alpha1.PushSecret
		want     Ownership
		mentions string
	}{
		{"its own, by UID", withController(plain(), "ClusterPushSecret", "hello-world", "cps-uid"), Owned, ""},
		{"created by hand", plain(), Unowned, "not owned by this ClusterPushSecret"},
		{"another ClusterPushSecret's", withController(plain(), "ClusterPushSecret", "other", "other-uid"), OwnedByOther, "controlled by ClusterPushSecret other"},
		{"an earlier ClusterPushSecret of the same name (ESO compares names only)", withController(plain(), "ClusterPushSecret", "hello-world", "old-uid"), OwnedByOther, "earlier ClusterPushSecret"},
		{"a non-controller owner reference does not own it", func() *esv1alpha1.PushSecret {
			ps := plain()
			ps.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "c", UID: "cm"}}
			return ps
		}(), Unowned, "not owned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := OwnershipOf(cps, tt.ps); got != tt.want {
				t.Fatalf("OwnershipOf = %v; want %v", got, tt.want)
			}
			if tt.want == Owned {
				return
			}
			reason := ConflictReason(cps, tt.ps)
			if !strings.HasPrefix(reason, "push secret already exists in namespace") || !strings.Contains(reason, tt.mentions) {
				t.Errorf("ConflictReason = %q; want ESO's reason and %q", reason, tt.mentions)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	cps := exampleCPS()
	desired := DesiredPushSecret(cps, "n")
	same := desired.DeepCopy()
	same.ResourceVersion = "7"
	same.Finalizers = []string{"pushsecret.externalsecrets.io/finalizer"}
	if _, changed := Update(same, desired); changed {
		t.Error("an unchanged PushSecret would be written")
	}
	emptyMaps := desired.DeepCopy()
	cps.Spec.PushSecretMetadata = esv1alpha1.PushSecretMetadata{}
	bare := DesiredPushSecret(cps, "n")
	emptyMaps.Labels, emptyMaps.Annotations = map[string]string{}, map[string]string{}
	if _, changed := Update(emptyMaps, bare); changed {
		t.Error("empty and nil metadata differ")
	}

	edited := desired.DeepCopy()
	edited.Spec.SecretStoreRefs[0].Name = "elsewhere"
	edited.Labels["extra"] = "x"
	edited.Annotations = nil
	got, changed := Update(edited, desired)
	if !changed || !reflect.DeepEqual(got.Spec, desired.Spec) || !reflect.DeepEqual(got.Labels, desired.Labels) || !reflect.DeepEqual(got.Annotations, desired.Annotations) {
		t.Errorf("Update = %+v, %v; want the edit undone", got, changed)
	}
	if !reflect.DeepEqual(got.Finalizers, edited.Finalizers) || edited.Spec.SecretStoreRefs[0].Name != "elsewhere" {
		t.Error("Update changed what it must keep, or its input")
	}
}

func TestStalePushSecrets(t *testing.T) {
	cps := exampleCPS()
	now := metav1.NewTime(time.Unix(1700000000, 0))
	own := func(namespace, name string) esv1alpha1.PushSecret {
		ps := &esv1alpha1.PushSecret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
		return *withController(ps, "ClusterPushSecret", "hello-world", "cps-uid")
	}
	deleting := own("gone", "hello-world-ps")
	deleting.DeletionTimestamp = &now
	foreign := own("left", "hello-world-ps")
	foreign.OwnerReferences[0].UID = "old-uid"
	owned := []esv1alpha1.PushSecret{
		own("kept", "hello-world-ps"),
		own("left", "hello-world-ps"),
		own("kept", "old-name"),
		deleting,
		foreign,
	}
	got := StalePushSecrets(cps, []string{"kept"}, owned)
	var names []string
	for _, ps := range got {
		names = append(names, ps.Namespace+"/"+ps.Name)
	}
	want := []string{"left/hello-world-ps", "kept/old-name"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("stale %v; want %v (never one being deleted or not controlled by this UID)", names, want)
	}
	if got := StalePushSecrets(cps, nil, owned); len(got) != 3 {
		t.Errorf("with no namespace selected, %d stale; want every owned one not being deleted (3)", len(got))
	}
}
