// Package pushsecret is the front-end of ESO's PushSecret
// (external-secrets.io/v1alpha1): it pushes keys of a Kubernetes Secret to
// the stores a PushSecret names, through the engine's store resolution and
// the fetch layer's clients (the same credential policy, rate limits and
// backoff as reads), and reports ESO's status (syncedPushSecrets, the Ready
// condition) and Events.
//
// The controller is thin: Compile turns a PushSecret into the pushes it
// asks for (a pure function; what keyferry does not implement yet is
// refused there, naming the field), decide chooses per push whether to
// write, skip or refuse from the remote's state (a chain of small named
// checks: updatePolicy, ownership), and the providers do the I/O
// (provider.Pusher). A remote secret keyferry did not create is never
// overwritten, and deletionPolicy Delete removes only what keyferry pushed.
package pushsecret

import (
	"fmt"
	"time"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/provider"
)

// Kind is the kind this package reconciles.
const Kind = esv1alpha1.PushSecretKind

// DefaultRefreshInterval is ESO's default spec.refreshInterval.
const DefaultRefreshInterval = time.Hour

// Push is one value to push: one data[] entry to one store.
type Push struct {
	Store engine.StoreRef
	Ref   provider.PushRef
	// SecretKey is the source Secret's key; empty pushes the whole Secret.
	SecretKey string
	// Data is the spec entry, recorded in status.syncedPushSecrets.
	Data esv1alpha1.PushSecretData
}

// Spec is what a PushSecret asks for, checked.
type Spec struct {
	// Source is the name of the Secret whose keys are pushed.
	Source         string
	Stores         []engine.StoreRef
	Pushes         []Push
	UpdatePolicy   esv1alpha1.PushSecretUpdatePolicy
	DeletionPolicy esv1alpha1.PushSecretDeletionPolicy
	// Refresh is how often the values are pushed again; 0: only on change.
	Refresh time.Duration
}

// specCheck is one rule a PushSecret's spec must pass; it returns the
// message of an InvalidSpec failure, or "".
type specCheck func(ps *esv1alpha1.PushSecret) string

// specChecks are the rules, in order; the first failure is reported.
var specChecks = []specCheck{
	sourceIsOneNamedSecret,
	storesAreNamed,
	dataToIsNotUsed,
	templateIsNotUsed,
	dataEntriesAreSupported,
	remoteRefsAreUnique,
	policiesAreKnown,
	refreshIntervalIsADuration,
}

// Compile checks a PushSecret and lists its pushes, store by store in the
// order of spec.secretStoreRefs, entries in the order of spec.data.
func Compile(ps *esv1alpha1.PushSecret) (Spec, error) {
	for _, check := range specChecks {
		if msg := check(ps); msg != "" {
			return Spec{}, &engine.Error{Reason: engine.ReasonInvalidSpec, Err: fmt.Errorf("%s", msg)}
		}
	}
	s := &ps.Spec
	out := Spec{
		Source:         s.Selector.Secret.Name,
		UpdatePolicy:   s.UpdatePolicy,
		DeletionPolicy: s.DeletionPolicy,
		Refresh:        DefaultRefreshInterval,
	}
	if out.UpdatePolicy == "" {
		out.UpdatePolicy = esv1alpha1.PushSecretUpdatePolicyReplace
	}
	if out.DeletionPolicy == "" {
		out.DeletionPolicy = esv1alpha1.PushSecretDeletionPolicyNone
	}
	if s.RefreshInterval != nil {
		out.Refresh = s.RefreshInterval.Duration
	}
	for _, sr := range s.SecretStoreRefs {
		st := storeRef(sr)
		out.Stores = append(out.Stores, st)
		for _, d := range s.Data {
			out.Pushes = append(out.Pushes, Push{
				Store:     st,
				Ref:       provider.PushRef{RemoteKey: d.Match.RemoteRef.RemoteKey, Property: d.Match.RemoteRef.Property},
				SecretKey: d.Match.SecretKey,
				Data:      d,
			})
		}
	}
	return out, nil
}

func storeRef(sr esv1alpha1.PushSecretStoreRef) engine.StoreRef {
	kind := sr.Kind
	if kind == "" {
		kind = esv1.SecretStoreKind
	}
	return engine.StoreRef{Kind: kind, Name: sr.Name}
}

// StoreKey is the key of a store in status.syncedPushSecrets, as ESO
// writes it: "<Kind>/<name>".
func StoreKey(st engine.StoreRef) string { return st.Kind + "/" + st.Name }

// RemoteKey is the key of a pushed value in status.syncedPushSecrets, as
// ESO writes it: the remote key, and "/<property>" after it when set.
func RemoteKey(ref provider.PushRef) string {
	if ref.Property != "" {
		return ref.RemoteKey + "/" + ref.Property
	}
	return ref.RemoteKey
}

// sourceIsOneNamedSecret: keyferry pushes one Secret named by
// selector.secret.name; a label selector or a generator is not supported
// yet.
func sourceIsOneNamedSecret(ps *esv1alpha1.PushSecret) string {
	sel := ps.Spec.Selector
	switch {
	case sel.GeneratorRef != nil:
		return "spec.selector.generatorRef is not supported by keyferry yet: push from a Secret (spec.selector.secret.name)"
	case sel.Secret == nil:
		return "spec.selector.secret is not set: name the Secret to push"
	case sel.Secret.Selector != nil:
		return "spec.selector.secret.selector (a label selector) is not supported by keyferry yet: name the Secret (spec.selector.secret.name)"
	case sel.Secret.Name == "":
		return "spec.selector.secret.name is empty: name the Secret to push"
	}
	return ""
}

// storesAreNamed: every store is named; a label selector is not supported
// yet, and a store kind is SecretStore or ClusterSecretStore.
func storesAreNamed(ps *esv1alpha1.PushSecret) string {
	if len(ps.Spec.SecretStoreRefs) == 0 {
		return "spec.secretStoreRefs is empty: name at least one store to push to"
	}
	for i, sr := range ps.Spec.SecretStoreRefs {
		switch {
		case sr.LabelSelector != nil:
			return fmt.Sprintf("spec.secretStoreRefs[%d].labelSelector is not supported by keyferry yet: name the store", i)
		case sr.Name == "":
			return fmt.Sprintf("spec.secretStoreRefs[%d].name is empty", i)
		case sr.Kind != "" && sr.Kind != esv1.SecretStoreKind && sr.Kind != esv1.ClusterSecretStoreKind:
			return fmt.Sprintf("spec.secretStoreRefs[%d].kind %q is neither SecretStore nor ClusterSecretStore", i, sr.Kind)
		}
	}
	return ""
}

// dataToIsNotUsed: spec.dataTo is not supported yet.
func dataToIsNotUsed(ps *esv1alpha1.PushSecret) string {
	if len(ps.Spec.DataTo) > 0 {
		return "spec.dataTo is not supported by keyferry yet: list the keys in spec.data"
	}
	return ""
}

// templateIsNotUsed: spec.template is not supported yet; refusing it is
// better than pushing the untemplated values.
func templateIsNotUsed(ps *esv1alpha1.PushSecret) string {
	if ps.Spec.Template != nil {
		return "spec.template is not supported by keyferry yet for PushSecret (the values would be pushed untemplated, so nothing is pushed)"
	}
	return ""
}

// dataEntriesAreSupported: there is something to push, every entry names a
// remote key, and fields keyferry does not implement yet are not used.
func dataEntriesAreSupported(ps *esv1alpha1.PushSecret) string {
	if len(ps.Spec.Data) == 0 {
		return "spec.data is empty: list the keys to push"
	}
	for i, d := range ps.Spec.Data {
		switch {
		case d.Match.RemoteRef.RemoteKey == "":
			return fmt.Sprintf("spec.data[%d].match.remoteRef.remoteKey is empty", i)
		case d.Metadata != nil && len(d.Metadata.Raw) > 0 && string(d.Metadata.Raw) != "null":
			return fmt.Sprintf("spec.data[%d].metadata is not supported by keyferry yet", i)
		case d.ConversionStrategy != "" && d.ConversionStrategy != esv1alpha1.PushSecretConversionNone:
			return fmt.Sprintf("spec.data[%d].conversionStrategy %q is not supported by keyferry yet (only None)", i, d.ConversionStrategy)
		}
	}
	return ""
}

// remoteRefsAreUnique: two entries never write the same remote value.
func remoteRefsAreUnique(ps *esv1alpha1.PushSecret) string {
	seen := map[string]int{}
	for i, d := range ps.Spec.Data {
		k := RemoteKey(provider.PushRef{RemoteKey: d.Match.RemoteRef.RemoteKey, Property: d.Match.RemoteRef.Property})
		if j, dup := seen[k]; dup {
			return fmt.Sprintf("spec.data[%d] and spec.data[%d] push to the same remote ref %q", j, i, k)
		}
		seen[k] = i
	}
	return ""
}

// policiesAreKnown: updatePolicy and deletionPolicy are ESO's values (the
// CRD's enum checks them too; an object written before it may not be).
func policiesAreKnown(ps *esv1alpha1.PushSecret) string {
	switch ps.Spec.UpdatePolicy {
	case "", esv1alpha1.PushSecretUpdatePolicyReplace, esv1alpha1.PushSecretUpdatePolicyIfNotExists:
	default:
		return fmt.Sprintf("spec.updatePolicy %q is neither Replace nor IfNotExists", ps.Spec.UpdatePolicy)
	}
	switch ps.Spec.DeletionPolicy {
	case "", esv1alpha1.PushSecretDeletionPolicyDelete, esv1alpha1.PushSecretDeletionPolicyNone:
	default:
		return fmt.Sprintf("spec.deletionPolicy %q is neither Delete nor None", ps.Spec.DeletionPolicy)
	}
	return ""
}

// refreshIntervalIsADuration: spec.refreshInterval parses.
func refreshIntervalIsADuration(ps *esv1alpha1.PushSecret) string {
	if err := ps.Spec.RefreshInterval.Err(); err != nil {
		return fmt.Sprintf("spec.refreshInterval: %v", err)
	}
	return ""
}
