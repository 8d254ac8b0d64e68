// Package clusterexternalsecret is the ClusterExternalSecret front-end: it
// fans one ExternalSecret spec out to every namespace a
// ClusterExternalSecret selects, keeps those ExternalSecrets as specified,
// removes them from namespaces that stop matching, and reports the result
// in the ClusterExternalSecret's status and Events. Syncing each
// ExternalSecret is the ExternalSecret front-end's job; values they share
// are fetched once through the engine's fetch layer.
//
// The pure steps (which namespaces are selected, what each ExternalSecret
// should look like, what to change in an existing one) are functions with
// table tests; the Reconciler only reads the cache and writes differences.
package clusterexternalsecret

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// Kind is the ClusterExternalSecret kind, as written in ownerReferences.
const Kind = "ClusterExternalSecret"

// ExternalSecretName returns the name of the ExternalSecrets ces creates:
// spec.externalSecretName, or the ClusterExternalSecret's own name.
func ExternalSecretName(ces *esv1.ClusterExternalSecret) string {
	if ces.Spec.ExternalSecretName != "" {
		return ces.Spec.ExternalSecretName
	}
	return ces.Name
}

// Selector decides which namespaces a ClusterExternalSecret selects: those
// matching any of spec.namespaceSelectors or the deprecated
// spec.namespaceSelector, plus those listed in spec.namespaces.
type Selector struct {
	selectors []labels.Selector
	names     map[string]struct{}
}

// NewSelector compiles the namespace selection of ces. Its error names the
// invalid field.
func NewSelector(ces *esv1.ClusterExternalSecret) (*Selector, error) {
	s := &Selector{names: map[string]struct{}{}}
	for i, ls := range ces.Spec.NamespaceSelectors {
		if ls == nil {
			continue // a null selector matches nothing
		}
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			return nil, fmt.Errorf("spec.namespaceSelectors[%d]: %w", i, err)
		}
		s.selectors = append(s.selectors, sel)
	}
	if ls := ces.Spec.NamespaceSelector; ls != nil {
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			return nil, fmt.Errorf("spec.namespaceSelector: %w", err)
		}
		s.selectors = append(s.selectors, sel)
	}
	for _, n := range ces.Spec.Namespaces {
		s.names[n] = struct{}{}
	}
	return s, nil
}

// Selects reports whether ns is selected. A namespace being deleted is
// never selected: nothing can be created in it.
func (s *Selector) Selects(ns *corev1.Namespace) bool {
	if !ns.DeletionTimestamp.IsZero() {
		return false
	}
	if _, ok := s.names[ns.Name]; ok {
		return true
	}
	set := labels.Set(ns.Labels)
	for _, sel := range s.selectors {
		if sel.Matches(set) {
			return true
		}
	}
	return false
}

// SelectNamespaces returns the sorted names of the namespaces ces selects
// among namespaces. Names in spec.namespaces that do not exist are not
// selected (they are once the namespace is created).
func SelectNamespaces(ces *esv1.ClusterExternalSecret, namespaces []corev1.Namespace) ([]string, error) {
	sel, err := NewSelector(ces)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range namespaces {
		if sel.Selects(&namespaces[i]) {
			out = append(out, namespaces[i].Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// DesiredExternalSecret returns the ExternalSecret ces wants in namespace:
// named ExternalSecretName(ces), with spec.externalSecretSpec, exactly the
// labels and annotations of spec.externalSecretMetadata, and a controller
// ownerReference to ces. As in ESO, the ClusterExternalSecret's own
// force-sync annotation is passed on, so changing it syncs every
// ExternalSecret at once.
func DesiredExternalSecret(ces *esv1.ClusterExternalSecret, namespace string) *esv1.ExternalSecret {
	md := ces.Spec.ExternalSecretMetadata
	es := &esv1.ExternalSecret{
		TypeMeta: metav1.TypeMeta{APIVersion: esv1.GroupVersion.String(), Kind: "ExternalSecret"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       namespace,
			Name:            ExternalSecretName(ces),
			Labels:          copyMap(md.Labels),
			Annotations:     copyMap(md.Annotations),
			OwnerReferences: []metav1.OwnerReference{ownerReference(ces)},
		},
		Spec: *ces.Spec.ExternalSecretSpec.DeepCopy(),
	}
	if v, ok := ces.Annotations[esv1.AnnotationForceSync]; ok {
		if es.Annotations == nil {
			es.Annotations = map[string]string{}
		}
		es.Annotations[esv1.AnnotationForceSync] = v
	} else {
		delete(es.Annotations, esv1.AnnotationForceSync)
	}
	return es
}

func ownerReference(ces *esv1.ClusterExternalSecret) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{
		APIVersion: esv1.GroupVersion.String(), Kind: Kind,
		Name: ces.Name, UID: ces.UID,
		Controller: &t, BlockOwnerDeletion: &t,
	}
}

// Ownership says how an existing ExternalSecret relates to a
// ClusterExternalSecret.
type Ownership int

const (
	// Owned: the ClusterExternalSecret is its controller.
	Owned Ownership = iota
	// OwnedByOther: another object (or an earlier ClusterExternalSecret of
	// the same name) is its controller.
	OwnedByOther
	// Unowned: it has no controller; someone created it by hand.
	Unowned
)

// OwnershipOf reports how es relates to ces. Ownership is by UID, so an
// ExternalSecret left by a deleted ClusterExternalSecret of the same name
// is not taken over.
func OwnershipOf(ces *esv1.ClusterExternalSecret, es *esv1.ExternalSecret) Ownership {
	ref := metav1.GetControllerOf(es)
	switch {
	case ref == nil:
		return Unowned
	case ref.UID == ces.UID:
		return Owned
	default:
		return OwnedByOther
	}
}

// ConflictReason is the failedNamespaces reason for an ExternalSecret that
// exists in a selected namespace and is not this ClusterExternalSecret's.
func ConflictReason(ces *esv1.ClusterExternalSecret, es *esv1.ExternalSecret) string {
	if ref := metav1.GetControllerOf(es); ref != nil && ref.UID != ces.UID {
		if ref.Kind == Kind && ref.Name == ces.Name {
			return fmt.Sprintf("ExternalSecret %s already exists and belongs to an earlier ClusterExternalSecret named %s (it is replaced once the garbage collector removes it)", es.Name, ces.Name)
		}
		return fmt.Sprintf("ExternalSecret %s already exists and is controlled by %s %s; it was left untouched", es.Name, ref.Kind, ref.Name)
	}
	return fmt.Sprintf("ExternalSecret %s already exists and is not owned by this ClusterExternalSecret; it was left untouched (delete it, or rename spec.externalSecretName)", es.Name)
}

// Update returns existing changed to match desired, and whether anything
// changed: the spec, labels and annotations are replaced as a whole when
// they differ (as ESO does, so edits by others are undone), and the
// controller ownerReference is added when missing. existing is not
// modified. Semantic equality makes a nil and an empty map equal, so
// nothing is written when nothing changed.
func Update(existing, desired *esv1.ExternalSecret) (*esv1.ExternalSecret, bool) {
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
	for _, ref := range desired.OwnerReferences {
		if c := metav1.GetControllerOf(out); c == nil || c.UID != ref.UID {
			out.OwnerReferences = setControllerRef(out.OwnerReferences, ref)
			changed = true
		}
	}
	return out, changed
}

// setControllerRef drops any other controller reference and any reference
// to the same owner, then adds ref.
func setControllerRef(refs []metav1.OwnerReference, ref metav1.OwnerReference) []metav1.OwnerReference {
	out := make([]metav1.OwnerReference, 0, len(refs)+1)
	for _, r := range refs {
		if r.UID == ref.UID || (r.Controller != nil && *r.Controller) {
			continue
		}
		out = append(out, r)
	}
	return append(out, ref)
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
