// Package clusterpushsecret is the ClusterPushSecret front-end: it fans one
// PushSecret spec out to every namespace a ClusterPushSecret's
// spec.namespaceSelectors select, keeps those PushSecrets as specified,
// deletes them from namespaces that stop matching, and reports the result in
// the ClusterPushSecret's status and Events. Pushing is the PushSecret
// front-end's job (internal/controller/pushsecret).
//
// Unlike a ClusterExternalSecret, a ClusterPushSecret without a namespace
// selector selects no namespace (ESO advisory GHSA-fcxq-v2r3-cc8h), and the
// Ready condition says so. A PushSecret of the same name that this
// ClusterPushSecret does not control (by UID) is never modified or deleted.
//
// The pure steps (which namespaces are selected, the named spec checks,
// what each PushSecret should look like, what to change in an existing one,
// the Ready condition) are functions with table tests; the Reconciler only
// reads the cache and writes differences.
package clusterpushsecret

import (
	"fmt"
	"maps"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
)

// Kind is the ClusterPushSecret kind, as written in ownerReferences.
const Kind = esv1alpha1.ClusterPushSecretKind

// PushSecretName returns the name of the PushSecrets cps creates:
// spec.pushSecretName, or the ClusterPushSecret's own name.
func PushSecretName(cps *esv1alpha1.ClusterPushSecret) string {
	if cps.Spec.PushSecretName != "" {
		return cps.Spec.PushSecretName
	}
	return cps.Name
}

// Selector decides which namespaces a ClusterPushSecret selects: those
// matching any of spec.namespaceSelectors. No selector (or only null
// entries) selects nothing.
type Selector struct {
	selectors []labels.Selector
}

// NewSelector compiles spec.namespaceSelectors. Its error names the invalid
// entry.
func NewSelector(cps *esv1alpha1.ClusterPushSecret) (*Selector, error) {
	s := &Selector{}
	for i, ls := range cps.Spec.NamespaceSelectors {
		if ls == nil {
			continue // a null selector matches nothing
		}
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			return nil, fmt.Errorf("spec.namespaceSelectors[%d]: %w", i, err)
		}
		s.selectors = append(s.selectors, sel)
	}
	return s, nil
}

// Empty reports whether the selector can select no namespace at all.
func (s *Selector) Empty() bool { return len(s.selectors) == 0 }

// Selects reports whether ns is selected. A namespace being deleted is
// never selected: nothing can be created in it.
func (s *Selector) Selects(ns *corev1.Namespace) bool {
	if !ns.DeletionTimestamp.IsZero() {
		return false
	}
	set := labels.Set(ns.Labels)
	for _, sel := range s.selectors {
		if sel.Matches(set) {
			return true
		}
	}
	return false
}

// SelectNamespaces returns the sorted names of the namespaces sel selects
// among namespaces.
func SelectNamespaces(sel *Selector, namespaces []corev1.Namespace) []string {
	var out []string
	for i := range namespaces {
		if sel.Selects(&namespaces[i]) {
			out = append(out, namespaces[i].Name)
		}
	}
	sort.Strings(out)
	return out
}

// DesiredPushSecret returns the PushSecret cps wants in namespace: named
// PushSecretName(cps), with spec.pushSecretSpec, exactly the labels and
// annotations of spec.pushSecretMetadata, and a controller ownerReference
// to cps (which also lets the garbage collector delete it with cps).
func DesiredPushSecret(cps *esv1alpha1.ClusterPushSecret, namespace string) *esv1alpha1.PushSecret {
	md := cps.Spec.PushSecretMetadata
	return &esv1alpha1.PushSecret{
		TypeMeta: metav1.TypeMeta{APIVersion: esv1alpha1.GroupVersion.String(), Kind: "PushSecret"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       namespace,
			Name:            PushSecretName(cps),
			Labels:          copyMap(md.Labels),
			Annotations:     copyMap(md.Annotations),
			OwnerReferences: []metav1.OwnerReference{ownerReference(cps)},
		},
		Spec: *cps.Spec.PushSecretSpec.DeepCopy(),
	}
}

func ownerReference(cps *esv1alpha1.ClusterPushSecret) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{
		APIVersion: esv1alpha1.GroupVersion.String(), Kind: Kind,
		Name: cps.Name, UID: cps.UID,
		Controller: &t, BlockOwnerDeletion: &t,
	}
}

// Ownership says how an existing PushSecret relates to a ClusterPushSecret.
type Ownership int

const (
	// Owned: the ClusterPushSecret is its controller.
	Owned Ownership = iota
	// OwnedByOther: another object (or an earlier ClusterPushSecret of the
	// same name) is its controller.
	OwnedByOther
	// Unowned: it has no controller; someone created it by hand.
	Unowned
)

// OwnershipOf reports how ps relates to cps. Ownership is by UID, so a
// PushSecret left by a deleted ClusterPushSecret of the same name is not
// taken over (ESO compares only the owner's name).
func OwnershipOf(cps *esv1alpha1.ClusterPushSecret, ps *esv1alpha1.PushSecret) Ownership {
	ref := metav1.GetControllerOf(ps)
	switch {
	case ref == nil:
		return Unowned
	case ref.UID == cps.UID:
		return Owned
	default:
		return OwnedByOther
	}
}

// ConflictReason is the failedNamespaces reason for a PushSecret that
// exists in a selected namespace and is not this ClusterPushSecret's. It
// starts with ESO's reason, "push secret already exists in namespace".
func ConflictReason(cps *esv1alpha1.ClusterPushSecret, ps *esv1alpha1.PushSecret) string {
	const eso = "push secret already exists in namespace"
	if ref := metav1.GetControllerOf(ps); ref != nil && ref.UID != cps.UID {
		if ref.Kind == Kind && ref.Name == cps.Name {
			return fmt.Sprintf("%s: PushSecret %s belongs to an earlier ClusterPushSecret named %s (it is replaced once the garbage collector removes it)", eso, ps.Name, cps.Name)
		}
		return fmt.Sprintf("%s: PushSecret %s is controlled by %s %s; it was left untouched", eso, ps.Name, ref.Kind, ref.Name)
	}
	return fmt.Sprintf("%s: PushSecret %s is not owned by this ClusterPushSecret; it was left untouched (delete it, or set another spec.pushSecretName)", eso, ps.Name)
}

// Update returns existing changed to match desired, and whether anything
// changed: the spec, labels and annotations are replaced as a whole when
// they differ (as ESO does, so edits by others are undone). existing is not
// modified; it must already be Owned. Semantic equality makes a nil and an
// empty map equal, so nothing is written when nothing changed.
func Update(existing, desired *esv1alpha1.PushSecret) (*esv1alpha1.PushSecret, bool) {
	out := existing.DeepCopy()
	changed := false
	if !equality.Semantic.DeepEqual(existing.Spec, desired.Spec) {
		out.Spec = *desired.Spec.DeepCopy()
		changed = true
	}
	if !equality.Semantic.DeepEqual(existing.Labels, desired.Labels) {
		out.Labels = copyMap(desired.Labels)
		changed = true
	}
	if !equality.Semantic.DeepEqual(existing.Annotations, desired.Annotations) {
		out.Annotations = copyMap(desired.Annotations)
		changed = true
	}
	return out, changed
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
