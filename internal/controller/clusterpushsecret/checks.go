package clusterpushsecret

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
)

// Reasons of the Ready condition (docs/status.md#clusterpushsecret-ready).
// Synced and Errored are ESO's; keyferry names the refusals ESO has no
// reason for.
const (
	// ReasonSynced: every selected namespace has its PushSecret.
	ReasonSynced = "Synced"
	// ReasonErrored: one or more selected namespaces have no PushSecret
	// (status.failedNamespaces says why).
	ReasonErrored = "Errored"
	// ReasonInvalidSpec: a field holds an unusable value; nothing is
	// created or deleted until it is fixed.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonNoNamespaceSelector: spec.namespaceSelectors selects nothing
	// (absent, empty or only null entries), so no namespace is selected.
	ReasonNoNamespaceSelector = "NoNamespaceSelector"
)

// Event reasons besides the condition's.
const (
	// EventConflict: a PushSecret of the same name exists in a selected
	// namespace and is not this ClusterPushSecret's.
	EventConflict = "PushSecretConflict"
	// EventApplyFailed: creating, updating or deleting a PushSecret
	// failed; it is retried with backoff.
	EventApplyFailed = "ApplyFailed"
)

// Refusal is the outcome of a failed spec check: the Ready reason and the
// message, one sentence saying what to do.
type Refusal struct {
	Reason, Message string
}

// specCheck is one named rule a ClusterPushSecret's spec must pass before
// anything is provisioned; it returns nil when the rule holds.
type specCheck func(cps *esv1alpha1.ClusterPushSecret) *Refusal

// specChecks run in order; the first refusal wins.
var specChecks = []specCheck{
	namespaceSelectorsAreValid,
	refreshTimeIsADuration,
	namespaceSelectorIsGiven,
}

// CheckSpec runs the spec checks and returns the first refusal, or nil.
func CheckSpec(cps *esv1alpha1.ClusterPushSecret) *Refusal {
	for _, check := range specChecks {
		if r := check(cps); r != nil {
			return r
		}
	}
	return nil
}

// namespaceSelectorsAreValid: every spec.namespaceSelectors entry is a
// valid label selector.
func namespaceSelectorsAreValid(cps *esv1alpha1.ClusterPushSecret) *Refusal {
	if _, err := NewSelector(cps); err != nil {
		return &Refusal{ReasonInvalidSpec, fmt.Sprintf("Invalid namespace selection: %v; no PushSecret is created or deleted until it is fixed.", err)}
	}
	return nil
}

// refreshTimeIsADuration: spec.refreshTime, when set, is a duration (ESO
// cannot decode anything else; keyferry does not replace it by the default
// silently).
func refreshTimeIsADuration(cps *esv1alpha1.ClusterPushSecret) *Refusal {
	if err := cps.Spec.RefreshInterval.Err(); err != nil {
		return &Refusal{ReasonInvalidSpec, fmt.Sprintf("Invalid spec: spec.refreshTime: %v; no PushSecret is created or deleted until it is fixed.", err)}
	}
	return nil
}

// namespaceSelectorIsGiven: a ClusterPushSecret without a namespace
// selector selects no namespace, never every namespace (ESO advisory
// GHSA-fcxq-v2r3-cc8h); the PushSecrets it had are deleted.
func namespaceSelectorIsGiven(cps *esv1alpha1.ClusterPushSecret) *Refusal {
	for _, ls := range cps.Spec.NamespaceSelectors {
		if ls != nil {
			return nil
		}
	}
	return &Refusal{ReasonNoNamespaceSelector, "spec.namespaceSelectors is empty, so no namespace is selected " +
		"(a ClusterPushSecret without a namespace selector never matches every namespace: ESO advisory GHSA-fcxq-v2r3-cc8h); " +
		"add a selector, such as matchLabels of the namespaces to push from, or {} to select every namespace."}
}

// StoreClass is a store spec.pushSecretSpec.secretStoreRefs names, with the
// controller class it was found to have.
type StoreClass struct {
	Name string
	// Class is the store's spec.controller; Found is false when the store
	// could not be read.
	Class string
	Found bool
}

// ClusterStoresNamed returns the ClusterSecretStores cps's PushSecrets name,
// and whether they are all the stores they use: a SecretStore (one per
// namespace) or a label selector cannot be resolved here.
func ClusterStoresNamed(cps *esv1alpha1.ClusterPushSecret) ([]string, bool) {
	refs := cps.Spec.PushSecretSpec.SecretStoreRefs
	if len(refs) == 0 {
		return nil, false
	}
	names := make([]string, 0, len(refs))
	for _, r := range refs {
		if r.Name == "" || r.LabelSelector != nil || r.Kind != esv1.ClusterSecretStoreKind {
			return nil, false
		}
		names = append(names, r.Name)
	}
	return names, true
}

// StoresOfAnotherClass returns why a ClusterPushSecret belongs to another
// controller class (--controller-class), or "" when this keyferry serves
// it: every store its PushSecrets name is a ClusterSecretStore that exists
// and names another class in spec.controller. As with a PushSecret, one
// store that could be this keyferry's is enough to serve it.
func StoresOfAnotherClass(stores []StoreClass, class string) string {
	if len(stores) == 0 {
		return ""
	}
	names := make([]string, 0, len(stores))
	for _, s := range stores {
		if !s.Found || engine.HandlesStore(class, &esv1.SecretStoreSpec{Controller: s.Class}) {
			return ""
		}
		names = append(names, fmt.Sprintf("ClusterSecretStore %q (controller %q)", s.Name, s.Class))
	}
	return "every store it names is of another controller class: " + strings.Join(names, ", ")
}

// ReadyCondition returns the Ready condition's status, reason and message
// for a ClusterPushSecret whose PushSecrets are named name, that selected n
// namespaces and failed in failed.
func ReadyCondition(name string, n int, failed []esv1alpha1.ClusterPushSecretNamespaceFailure) (corev1.ConditionStatus, string, string) {
	switch {
	case len(failed) > 0:
		f := failed[0]
		more := ""
		if len(failed) > 1 {
			more = fmt.Sprintf(" (and %d more, see status.failedNamespaces)", len(failed)-1)
		}
		// ESO's message, then which namespace and why.
		return corev1.ConditionFalse, ReasonErrored, fmt.Sprintf("one or more namespaces failed: PushSecret %s could not be provisioned in %d of %d selected namespaces: %s: %s%s.",
			name, len(failed), n, f.Namespace, f.Reason, more)
	case n == 0:
		return corev1.ConditionTrue, ReasonSynced, "No namespace matches spec.namespaceSelectors."
	case n == 1:
		return corev1.ConditionTrue, ReasonSynced, fmt.Sprintf("PushSecret %s is provisioned in the 1 selected namespace.", name)
	default:
		return corev1.ConditionTrue, ReasonSynced, fmt.Sprintf("PushSecret %s is provisioned in all %d selected namespaces.", name, n)
	}
}
