package restart

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/keyferry/keyferry/internal/kube"
)

// The marks keyferry's engine puts on every Secret it writes
// (internal/engine/apply.go: LabelManaged, AnnotationDataHash), repeated so
// that this package stays free of the engine; a test of
// internal/controller/restart checks they agree.
const (
	labelManaged       = "reconcile.external-secrets.io/managed"
	labelManagedValue  = "true"
	annotationDataHash = "reconcile.external-secrets.io/data-hash"
)

// Reasons an update of a Secret is not a change of content (ChangeOf).
const (
	ChangeNotManaged     = "NotManaged"
	ChangeNoHash         = "NoHash"
	ChangeHashUnchanged  = "HashUnchanged"
	ChangeDataUnchanged  = "DataUnchanged"
	ChangeContentChanged = "ContentChanged"
)

// changeCheck is one named rule of ChangeOf: it says why an update is not
// a change of content, or passes ("").
type changeCheck func(old, cur *corev1.Secret) string

// changeChecks run in order; the first that objects wins.
var changeChecks = []changeCheck{
	notManaged,
	noHash,
	hashUnchanged,
	dataUnchanged,
}

// ChangeOf says whether an update of a Secret from old to cur changed the
// content keyferry wrote, and why not when it did not: the Secret is
// managed by keyferry (before and after), keyferry's data-hash annotation
// went from one non-empty value to a different non-empty value, and the
// data or type really differ. The engine writes the hash of what it wrote
// and writes nothing when nothing changed, so a creation, a no-op refresh,
// an edit by someone else (the hash stays) and a Secret keyferry does not
// manage never count. The last check keeps a write whose hash changed
// without the data changing (the template's labels or annotations changed,
// a Secret ESO wrote taken over with a different hash) from restarting
// pods, which see only the data.
func ChangeOf(old, cur *corev1.Secret) (bool, string) {
	for _, c := range changeChecks {
		if reason := c(old, cur); reason != "" {
			return false, reason
		}
	}
	return true, ChangeContentChanged
}

// ContentChanged is ChangeOf without the reason.
func ContentChanged(old, cur *corev1.Secret) bool {
	ok, _ := ChangeOf(old, cur)
	return ok
}

func notManaged(old, cur *corev1.Secret) string {
	if old.Labels[labelManaged] != labelManagedValue || cur.Labels[labelManaged] != labelManagedValue {
		return ChangeNotManaged
	}
	return ""
}

// noHash: one side carries no hash (a first write by keyferry, an adoption,
// or an edit that removed the annotation).
func noHash(old, cur *corev1.Secret) string {
	if old.Annotations[annotationDataHash] == "" || cur.Annotations[annotationDataHash] == "" {
		return ChangeNoHash
	}
	return ""
}

func hashUnchanged(old, cur *corev1.Secret) string {
	if old.Annotations[annotationDataHash] == cur.Annotations[annotationDataHash] {
		return ChangeHashUnchanged
	}
	return ""
}

func dataUnchanged(old, cur *corev1.Secret) string {
	if old.Type == cur.Type && kube.SameData(old, cur) {
		return ChangeDataUnchanged
	}
	return ""
}
