package engine

import (
	"crypto/sha3"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// Reasons of the write decision (besides SecretNotOwned, SecretMissing,
// SecretImmutable and InvalidSpec in errors.go). Documented in
// docs/status.md.
const (
	// ReasonCredentialNotAllowed: the Secret would be a credential the
	// cluster itself honours (a ServiceAccount token the token controller
	// fills in, a bootstrap token the API server accepts).
	ReasonCredentialNotAllowed = "CredentialSecretNotAllowed"
	// ReasonMergeNotAllowed: creationPolicy Merge/CreateOrMerge found a
	// Secret it may not write into (a credential, another controller's).
	ReasonMergeNotAllowed = "MergeNotAllowed"
	// ReasonWouldBeEmpty: the sources produced no key while the existing
	// Secret has some; keyferry never blanks a Secret.
	ReasonWouldBeEmpty = "SecretWouldBeEmpty"
)

// Marks of Secrets that hold credentials or belong to other controllers.
const (
	// SecretTypeHelmRelease is the type of the Secrets Helm keeps its
	// release history in.
	SecretTypeHelmRelease corev1.SecretType = "helm.sh/release.v1"
	// AnnotationCertManagerCertificate marks a Secret cert-manager issues.
	AnnotationCertManagerCertificate = "cert-manager.io/certificate-name"
	// AnnotationMergedKeysByWriter records, per writer, the keys each
	// Merge wrote: a JSON object {"ExternalSecret/a": ["k1", "k2"], ...}.
	AnnotationMergedKeysByWriter = "keyferry.io/merged-keys-by-writer"
	// esoFieldManager is the field manager ESO writes a Secret with for the
	// ExternalSecret whose name follows it.
	esoFieldManager    = "externalsecrets.external-secrets.io/"
	esoFieldManagerSHA = "externalsecrets.external-secrets.io/sha3/"
	// bootstrapTokenPrefix names the Secrets in kube-system that the
	// bootstrap token authenticator reads.
	bootstrapTokenPrefix = "bootstrap-token-"
)

// WaitsForChange says whether a failure with this reason cannot go away by
// retrying: only a person changing the ExternalSecret or the Secret lifts
// it, so the front-end waits for such a change instead of requeueing.
func WaitsForChange(reason string) bool {
	switch reason {
	case ReasonSecretNotOwned, ReasonSecretMissing, ReasonSecretImmutable,
		ReasonCredentialNotAllowed, ReasonMergeNotAllowed:
		return true
	}
	return false
}

// TypeRefusal says why keyferry never writes a Secret of type t in
// namespace ns ("" when it may). Compile steps use it to name the field.
func TypeRefusal(ns string, t corev1.SecretType) string {
	switch {
	case t == corev1.SecretTypeServiceAccountToken:
		return "a Secret of type kubernetes.io/service-account-token makes the token controller mint a long-lived token for the ServiceAccount it names; keyferry never writes one"
	case t == corev1.SecretTypeBootstrapToken && ns == metav1.NamespaceSystem:
		return "a Secret of type bootstrap.kubernetes.io/token in kube-system is a credential the API server accepts; keyferry never writes one"
	}
	return ""
}

// AnnotationRefusal says why keyferry never writes the annotation key on
// a Secret ("" when it may).
func AnnotationRefusal(key string) string {
	if key == corev1.ServiceAccountNameKey || key == corev1.ServiceAccountUIDKey {
		return "the annotation " + key + " binds a Secret to a ServiceAccount's token; keyferry never writes it"
	}
	return ""
}

// NameRefusal says why keyferry never writes a Secret named name in
// namespace ns ("" when it may).
func NameRefusal(ns, name string) string {
	if ns == metav1.NamespaceSystem && strings.HasPrefix(name, bootstrapTokenPrefix) {
		return "Secrets named bootstrap-token-* in kube-system are bootstrap tokens the API server reads; keyferry never writes one"
	}
	return ""
}

// write is one proposed change to a Secret, examined by the write checks.
type write struct {
	plan Plan
	// current is the Secret as it is; nil when it is to be created.
	current *corev1.Secret
	// next is the Secret as it would be written (nil before it is built).
	next *corev1.Secret
	// merge: creationPolicy Merge or CreateOrMerge.
	merge bool
	// gone: every source is gone and deletionPolicy tolerated it.
	gone bool
}

// writeCheck examines a proposed write and says why it may not happen
// (nil: it may). Its reason and message go straight into the Ready
// condition and the Event.
type writeCheck func(w *write) *Error

// claimChecks decide, in order, whether the plan may touch the existing
// Secret at all (write into it, or delete it).
var claimChecks = []writeCheck{
	mergeNeverTouchesCredentials,
	mergeNeverTouchesAnotherControllersSecret,
	neverTakeOver,
}

// contentChecks decide whether a Secret with the content of next may be
// written (created, or updated).
var contentChecks = []writeCheck{
	neverWriteAServiceAccountToken,
	neverWriteABootstrapToken,
}

// changeChecks decide whether the existing Secret may change into next;
// they run only when the content differs.
var changeChecks = []writeCheck{
	neverBlank,
	typeNeverChanges,
	immutableNeverChanges,
}

// runChecks runs a chain; the first failure wins.
func runChecks(w *write, chain []writeCheck) *Error {
	for _, check := range chain {
		if err := check(w); err != nil {
			return err
		}
	}
	return nil
}

// credentialTypes are Secret types whose content other components trust:
// Merge never writes into them.
var credentialTypes = map[corev1.SecretType]string{
	corev1.SecretTypeServiceAccountToken: "a ServiceAccount token",
	corev1.SecretTypeBootstrapToken:      "a bootstrap token",
	SecretTypeHelmRelease:                "a Helm release record",
}

func mergeNeverTouchesCredentials(w *write) *Error {
	if !w.merge {
		return nil
	}
	s := w.current
	what, ok := credentialTypes[s.Type]
	if !ok && s.Annotations[corev1.ServiceAccountNameKey] != "" {
		what, ok = "bound to a ServiceAccount token", true
	}
	if !ok {
		return nil
	}
	return fail(ReasonMergeNotAllowed, "Secret %q is %s (type %s); creationPolicy Merge never writes into a credential another component trusts", s.Name, what, s.Type)
}

func mergeNeverTouchesAnotherControllersSecret(w *write) *Error {
	if !w.merge || adoptable(w.current, w.plan) {
		return nil
	}
	s := w.current
	if ref := metav1.GetControllerOf(s); ref != nil && (w.plan.Owner.UID == "" || ref.UID != w.plan.Owner.UID) {
		return fail(ReasonMergeNotAllowed, "Secret %q is controlled by %s %q; creationPolicy Merge never writes into another controller's Secret (annotate the Secret %s=%s to allow it)", s.Name, ref.Kind, ref.Name, AnnotationAdopt, w.plan.Target.ManagedBy)
	}
	if cert := s.Annotations[AnnotationCertManagerCertificate]; cert != "" {
		return fail(ReasonMergeNotAllowed, "Secret %q is issued by cert-manager for Certificate %q; creationPolicy Merge never writes into another controller's Secret (annotate the Secret %s=%s to allow it)", s.Name, cert, AnnotationAdopt, w.plan.Target.ManagedBy)
	}
	return nil
}

func neverTakeOver(w *write) *Error {
	if w.merge {
		return nil
	}
	s, t := w.current, w.plan.Target
	if Owned(s, w.plan) || adoptable(s, w.plan) || CreatedByESO(s, w.plan) {
		return nil
	}
	return fail(ReasonSecretNotOwned, "Secret %q exists and was not created by %s; keyferry never takes over a Secret it does not own (use creationPolicy Merge, or annotate the Secret %s=%s to adopt it)", t.Name, t.ManagedBy, AnnotationAdopt, t.ManagedBy)
}

func neverWriteAServiceAccountToken(w *write) *Error {
	s := w.next
	if s.Type == corev1.SecretTypeServiceAccountToken {
		return fail(ReasonCredentialNotAllowed, "Secret %q: %s", s.Name, TypeRefusal(s.Namespace, s.Type))
	}
	for _, k := range []string{corev1.ServiceAccountNameKey, corev1.ServiceAccountUIDKey} {
		if _, ok := s.Annotations[k]; ok {
			return fail(ReasonCredentialNotAllowed, "Secret %q: %s", s.Name, AnnotationRefusal(k))
		}
	}
	return nil
}

func neverWriteABootstrapToken(w *write) *Error {
	s := w.next
	if why := TypeRefusal(s.Namespace, s.Type); why != "" {
		return fail(ReasonCredentialNotAllowed, "Secret %q: %s", s.Name, why)
	}
	if why := NameRefusal(s.Namespace, s.Name); why != "" {
		return fail(ReasonCredentialNotAllowed, "Secret %q: %s", s.Name, why)
	}
	return nil
}

func neverBlank(w *write) *Error {
	if w.merge || len(w.next.Data) > 0 || len(w.current.Data) == 0 {
		return nil
	}
	if w.gone && w.plan.Target.DeletionPolicy == esv1.DeletionPolicyMerge {
		return nil // every remote value is gone and deletionPolicy Merge removes the keys
	}
	e := fail(ReasonWouldBeEmpty, "the sources produced no key; keyferry never blanks Secret %q, which keeps its %d keys (check spec.dataFrom and the template)", w.current.Name, len(w.current.Data))
	e.RetryAfter = max(w.plan.MaxAge, time.Minute)
	return e
}

func typeNeverChanges(w *write) *Error {
	if w.current.Type == w.next.Type {
		return nil
	}
	return fail(ReasonInvalidSpec, "Secret %q has type %q; its type cannot change to %q (delete the Secret to let keyferry recreate it)", w.current.Name, w.current.Type, w.next.Type)
}

func immutableNeverChanges(w *write) *Error {
	if w.current.Immutable == nil || !*w.current.Immutable {
		return nil
	}
	return fail(ReasonSecretImmutable, "Secret %q is immutable and its desired content changed; delete it to let keyferry recreate it", w.current.Name)
}

// Owned says whether an existing Secret (or ConfigMap target) belongs to
// the plan's owner: a controller ownerReference with the owner's UID, or
// keyferry's owner annotation naming it.
func Owned(s metav1.Object, plan Plan) bool {
	if ref := metav1.GetControllerOf(s); ref != nil && plan.Owner.UID != "" && ref.UID == plan.Owner.UID {
		return true
	}
	return plan.Target.ManagedBy != "" && s.GetAnnotations()[AnnotationOwner] == plan.Target.ManagedBy
}

// adoptable says whether the Secret opts in to being written by the plan's
// owner: its adopt annotation names it.
func adoptable(s metav1.Object, plan Plan) bool {
	return plan.Target.ManagedBy != "" && s.GetAnnotations()[AnnotationAdopt] == plan.Target.ManagedBy
}

// CreatedByESO says whether External Secrets Operator created the Secret
// for the plan's ExternalSecret and left it without an ownerReference
// (creationPolicy Orphan): ESO's managed label and data-hash annotation, no
// controller ownerReference, and an entry in managedFields by the field
// manager ESO uses for an ExternalSecret of exactly this name
// ("externalsecrets.external-secrets.io/<name>", or ".../sha3/<hex>" for
// long names). managedFields are stripped from the cache, so the Secret
// must come from the API server.
//
// A namespace user can forge these marks only on a Secret they can already
// write, and they can already edit the ExternalSecret or add the adopt
// annotation: recognising them grants nothing new. A Secret another
// controller created (a token, a Helm release, a TLS Secret) carries none
// of them.
func CreatedByESO(s *corev1.Secret, plan Plan) bool {
	if plan.Owner.Kind != "ExternalSecret" || s.Labels[LabelManaged] != LabelManagedValue || s.Annotations[AnnotationDataHash] == "" {
		return false
	}
	if metav1.GetControllerOf(s) != nil {
		return false
	}
	manager := ESOFieldManager(plan.Owner.Name)
	for _, f := range s.ManagedFields {
		if f.Manager == manager {
			return true
		}
	}
	return false
}

// hasESOMarks says whether the Secret carries ESO's label and annotation
// without keyferry's owner marks: the only Secrets for which CreatedByESO
// needs managedFields.
func hasESOMarks(s *corev1.Secret, plan Plan) bool {
	return plan.Owner.Kind == "ExternalSecret" && s.Labels[LabelManaged] == LabelManagedValue &&
		s.Annotations[AnnotationDataHash] != "" && s.Annotations[AnnotationOwner] == "" && metav1.GetControllerOf(s) == nil
}

// ESOFieldManager is the field manager ESO writes an ExternalSecret's
// Secret with.
func ESOFieldManager(name string) string {
	m := esoFieldManager + name
	if len(m) > 63 {
		m = fmt.Sprintf("%s%x", esoFieldManagerSHA, sha3.Sum224([]byte(name)))
	}
	return m
}

// mergedKeys reads the per-writer record of merged keys. A record that does
// not parse counts as empty: nothing is removed on its word.
func mergedKeys(s *corev1.Secret) map[string][]string {
	rec := map[string][]string{}
	if v := s.Annotations[AnnotationMergedKeysByWriter]; v != "" {
		if err := json.Unmarshal([]byte(v), &rec); err != nil {
			return map[string][]string{}
		}
	}
	return rec
}

// setMergedKeys writes the record; the single-writer annotation of older
// versions is dropped (its keys are kept: nothing says whose they were).
func setMergedKeys(s *corev1.Secret, rec map[string][]string) {
	delete(s.Annotations, AnnotationMergedKeys)
	if len(rec) == 0 {
		delete(s.Annotations, AnnotationMergedKeysByWriter)
		return
	}
	b, _ := json.Marshal(rec) // a map of string slices always marshals; keys come out sorted
	s.Annotations[AnnotationMergedKeysByWriter] = string(b)
}

// mergeInto writes d's keys into s for writer, removing keys this writer
// merged before and no longer wants unless another writer also wrote them,
// and leaving every other key alone.
func mergeInto(s *corev1.Secret, data map[string][]byte, writer string) {
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	rec := mergedKeys(s)
	others := map[string]bool{}
	for w, keys := range rec {
		if w == writer {
			continue
		}
		for _, k := range keys {
			others[k] = true
		}
	}
	for _, k := range rec[writer] {
		if _, still := data[k]; !still && !others[k] {
			delete(s.Data, k)
		}
	}
	for k, v := range data {
		s.Data[k] = v
	}
	if len(data) == 0 {
		delete(rec, writer)
	} else {
		rec[writer] = sortedKeys(data)
	}
	setMergedKeys(s, rec)
}
