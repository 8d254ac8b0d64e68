// Package pushsecret is the front-end of ESO's PushSecret
// (external-secrets.io/v1alpha1): it pushes keys of Kubernetes Secrets (one
// named, or those a label selector selects), optionally rendered through
// spec.template, to the stores a PushSecret names or selects by label,
// through the engine's store resolution and the fetch layer's clients (the
// same credential policy, rate limits and backoff as reads), and reports
// ESO's status (syncedPushSecrets, the Ready condition) and Events.
//
// The controller is thin: Compile checks a PushSecret (a pure function;
// what keyferry does not implement yet is refused there, naming the
// field), Spec.pushesFor expands spec.data and spec.dataTo over a source
// Secret's keys for one store (pure as well; expand.go), resolve.go reads
// the source Secrets and the selected stores, decide chooses per push
// whether to write, skip or refuse from the remote's state (a chain of
// small named checks: updatePolicy, ownership), and the providers do the
// I/O (provider.Pusher). A remote secret keyferry did not create is never
// overwritten, and deletionPolicy Delete removes only what keyferry pushed.
package pushsecret

import (
	"fmt"
	"regexp"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/render"
	"github.com/keyferry/keyferry/internal/provider"
)

// Kind is the kind this package reconciles.
const Kind = esv1alpha1.PushSecretKind

// DefaultRefreshInterval is ESO's default spec.refreshInterval.
const DefaultRefreshInterval = time.Hour

// Push is one value to push: one data[] entry, or one entry a dataTo
// expanded, to one store.
type Push struct {
	Store engine.StoreRef
	Ref   provider.PushRef
	// SecretKey is the source Secret's key (after Conversion); empty
	// pushes the whole Secret.
	SecretKey string
	// Conversion converts the source Secret's keys before SecretKey is
	// looked up and before a whole Secret is pushed (conversionStrategy).
	Conversion esv1alpha1.PushSecretConversionStrategy
	// Only, when not nil, limits a whole-Secret push to these (converted)
	// keys: a dataTo bundle pushes the keys it matched.
	Only []string
	// Data is the entry recorded in status.syncedPushSecrets: the spec
	// entry, or the one a dataTo expanded to (as ESO records it).
	Data esv1alpha1.PushSecretData
	// Metadata is the entry's metadata as written (ESO's
	// PushSecretMetadata), handed to the provider (provider.MetadataPusher).
	Metadata []byte
}

// StoreSelector is one entry of spec.secretStoreRefs: a named store, or
// (Selector set) every store of Kind whose labels match.
type StoreSelector struct {
	// Ref is the named store; with Selector only its Kind is set.
	Ref      engine.StoreRef
	Selector labels.Selector
}

// DataTo is one checked spec.dataTo entry.
type DataTo struct {
	// Index is the entry's position in spec.dataTo, for messages.
	Index int
	// Store is the store storeRef names; when it names none, Selector
	// selects stores of Store.Kind by label.
	Store    engine.StoreRef
	Selector labels.Selector
	// Match selects the (converted) keys; nil selects every key.
	Match *regexp.Regexp
	// RemoteKey, when set, bundles every matched key into that one
	// remote secret; otherwise each key is pushed to a remote secret of
	// its own, named by Rewrite.
	RemoteKey  string
	Rewrite    []engine.Rewrite
	Conversion esv1alpha1.PushSecretConversionStrategy
	// Metadata is the entry's metadata as written, for every push it
	// expands to.
	Metadata []byte
}

// targets says whether the entry pushes to st (a store with labels).
func (d DataTo) targets(st Target) bool {
	if d.Store.Kind != st.Store.Kind {
		return false
	}
	if d.Selector == nil {
		return d.Store.Name == st.Store.Name
	}
	return d.Selector.Matches(labels.Set(st.Labels))
}

// Target is a resolved store: its reference and its labels (a dataTo
// entry may select it by label).
type Target struct {
	Store  engine.StoreRef
	Labels map[string]string
}

// Spec is what a PushSecret asks for, checked.
type Spec struct {
	// Source is the name of the Secret whose keys are pushed; when empty,
	// SourceSelector selects the Secrets of the namespace by label, or
	// Generator makes the values.
	Source         string
	SourceSelector labels.Selector
	// Generator, for spec.selector.generatorRef, makes the values; they
	// are kept in the PushSecret's local copy (generated.go).
	Generator *engine.GeneratorSource
	// Stores are spec.secretStoreRefs, in order.
	Stores         []StoreSelector
	Data           []esv1alpha1.PushSecretData
	DataTo         []DataTo
	UpdatePolicy   esv1alpha1.PushSecretUpdatePolicy
	DeletionPolicy esv1alpha1.PushSecretDeletionPolicy
	// Refresh is how often the values are pushed again; 0: only on change.
	Refresh time.Duration
	// Template, when set, renders the source Secret's data before the
	// pushes read it (spec.template).
	Template *PushTemplate
}

// specCheck is one rule a PushSecret's spec must pass; it returns the
// message of an InvalidSpec failure, or "".
type specCheck func(ps *esv1alpha1.PushSecret) string

// specChecks are the rules, in order; the first failure is reported.
var specChecks = []specCheck{
	sourceIsSet,
	storesAreNamedOrSelected,
	templateIsValid,
	somethingIsPushed,
	dataEntriesAreSupported,
	dataToEntriesAreValid,
	remoteRefsAreUnique,
	policiesAreKnown,
	refreshIntervalIsADuration,
}

// Compile checks a PushSecret and returns what it asks for. Which keys go
// where is known only with the source Secret's data and the stores'
// labels: Spec.pushesFor lists them.
func Compile(ps *esv1alpha1.PushSecret) (Spec, error) {
	for _, check := range specChecks {
		if msg := check(ps); msg != "" {
			return Spec{}, &engine.Error{Reason: engine.ReasonInvalidSpec, Err: fmt.Errorf("%s", msg)}
		}
	}
	s := &ps.Spec
	out := Spec{
		Data:           s.Data,
		UpdatePolicy:   s.UpdatePolicy,
		DeletionPolicy: s.DeletionPolicy,
		Refresh:        DefaultRefreshInterval,
	}
	switch g := s.Selector.GeneratorRef; {
	case g != nil:
		// Checked by sourceIsSet.
		out.Generator = &engine.GeneratorSource{Field: "spec.selector.generatorRef", Kind: g.Kind, Name: g.Name}
	case s.Selector.Secret.Name != "":
		out.Source = s.Selector.Secret.Name
	default:
		// Checked by sourceIsSet.
		out.SourceSelector, _ = metav1.LabelSelectorAsSelector(s.Selector.Secret.Selector)
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
	if s.Template != nil {
		out.Template, _ = compileTemplate(s.Template) // checked by templateIsValid
	}
	for _, sr := range s.SecretStoreRefs {
		sel := StoreSelector{Ref: storeRef(sr)}
		if sr.LabelSelector != nil {
			// Checked by storesAreNamedOrSelected; as ESO, a
			// labelSelector wins over a name.
			sel.Ref.Name = ""
			sel.Selector, _ = metav1.LabelSelectorAsSelector(sr.LabelSelector)
		}
		out.Stores = append(out.Stores, sel)
	}
	for i, d := range s.DataTo {
		dt, _ := compileDataTo(i, d) // checked by dataToEntriesAreValid
		out.DataTo = append(out.DataTo, dt)
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

// sourceIsSet: the values come from a Secret named by
// selector.secret.name, the Secrets selector.secret.selector selects (a
// valid label selector), or the generator selector.generatorRef names
// (never both a Secret and a generator, as ESO's CRD requires).
func sourceIsSet(ps *esv1alpha1.PushSecret) string {
	sel := ps.Spec.Selector
	switch g := sel.GeneratorRef; {
	case g != nil && sel.Secret != nil:
		return "spec.selector sets both secret and generatorRef: push either a Secret or what a generator makes"
	case g != nil && g.APIVersion != "" && g.APIVersion != genv1alpha1.GroupVersion.String():
		return fmt.Sprintf("spec.selector.generatorRef.apiVersion %q: use %s", g.APIVersion, genv1alpha1.GroupVersion.String())
	case g != nil && g.Kind == "":
		return "spec.selector.generatorRef.kind is empty"
	case g != nil && g.Name == "":
		return "spec.selector.generatorRef.name is empty"
	case g != nil:
		return ""
	case sel.Secret == nil:
		return "spec.selector.secret is not set: name the Secret to push, or a generator (spec.selector.generatorRef)"
	case sel.Secret.Name != "":
		// As ESO, a name wins over a selector.
		return ""
	case sel.Secret.Selector == nil:
		return "spec.selector.secret sets neither name nor selector: name the Secret to push, or select Secrets by label"
	}
	if _, err := metav1.LabelSelectorAsSelector(sel.Secret.Selector); err != nil {
		return fmt.Sprintf("spec.selector.secret.selector: %v", err)
	}
	return ""
}

// storesAreNamedOrSelected: every store is named or selected by a valid
// label selector, and a store kind is SecretStore or ClusterSecretStore.
func storesAreNamedOrSelected(ps *esv1alpha1.PushSecret) string {
	if len(ps.Spec.SecretStoreRefs) == 0 {
		return "spec.secretStoreRefs is empty: name at least one store to push to"
	}
	for i, sr := range ps.Spec.SecretStoreRefs {
		if msg := storeRefIsValid(fmt.Sprintf("spec.secretStoreRefs[%d]", i), sr); msg != "" {
			return msg
		}
	}
	return ""
}

func storeRefIsValid(field string, sr esv1alpha1.PushSecretStoreRef) string {
	switch {
	case sr.Kind != "" && sr.Kind != esv1.SecretStoreKind && sr.Kind != esv1.ClusterSecretStoreKind:
		return fmt.Sprintf("%s.kind %q is neither SecretStore nor ClusterSecretStore", field, sr.Kind)
	case sr.LabelSelector != nil:
		if _, err := metav1.LabelSelectorAsSelector(sr.LabelSelector); err != nil {
			return fmt.Sprintf("%s.labelSelector: %v", field, err)
		}
	case sr.Name == "":
		return fmt.Sprintf("%s sets neither name nor labelSelector", field)
	}
	return ""
}

// somethingIsPushed: spec.data or spec.dataTo lists what to push.
func somethingIsPushed(ps *esv1alpha1.PushSecret) string {
	if len(ps.Spec.Data) == 0 && len(ps.Spec.DataTo) == 0 {
		return "spec.data and spec.dataTo are both empty: list the keys to push"
	}
	return ""
}

// dataEntriesAreSupported: every data entry names a remote key, uses a
// known conversionStrategy, and no field keyferry does not implement yet.
func dataEntriesAreSupported(ps *esv1alpha1.PushSecret) string {
	for i, d := range ps.Spec.Data {
		switch {
		case d.Match.RemoteRef.RemoteKey == "":
			return fmt.Sprintf("spec.data[%d].match.remoteRef.remoteKey is empty", i)
		}
		if msg := conversionIsKnown(fmt.Sprintf("spec.data[%d]", i), d.ConversionStrategy); msg != "" {
			return msg
		}
	}
	return ""
}

func usesMetadata(m *apiextensionsv1.JSON) bool {
	return m != nil && len(m.Raw) > 0 && string(m.Raw) != "null"
}

func conversionIsKnown(field string, c esv1alpha1.PushSecretConversionStrategy) string {
	switch c {
	case "", esv1alpha1.PushSecretConversionNone, esv1alpha1.PushSecretConversionReverseUnicode:
		return ""
	}
	return fmt.Sprintf("%s.conversionStrategy %q is neither None nor ReverseUnicode", field, c)
}

// dataToEntriesAreValid: every dataTo entry targets a store of
// spec.secretStoreRefs (by name) or selects stores by label, its regexps
// compile, its transforms parse, and remoteKey (bundle) and rewrite
// (per-key) are not both set (ESO's rules).
func dataToEntriesAreValid(ps *esv1alpha1.PushSecret) string {
	for i, d := range ps.Spec.DataTo {
		if _, msg := compileDataTo(i, d); msg != "" {
			return msg
		}
		if d.StoreRef.Name != "" && !namedInStoreRefs(*d.StoreRef, ps.Spec.SecretStoreRefs) {
			return fmt.Sprintf("spec.dataTo[%d].storeRef names %s %q, which spec.secretStoreRefs does not name", i, storeRef(*d.StoreRef).Kind, d.StoreRef.Name)
		}
	}
	return ""
}

func namedInStoreRefs(ref esv1alpha1.PushSecretStoreRef, refs []esv1alpha1.PushSecretStoreRef) bool {
	want := storeRef(ref)
	for _, sr := range refs {
		if sr.Name != "" && storeRef(sr) == want {
			return true
		}
	}
	return false
}

// compileDataTo checks one dataTo entry and compiles it.
func compileDataTo(i int, d esv1alpha1.PushSecretDataTo) (DataTo, string) {
	field := fmt.Sprintf("spec.dataTo[%d]", i)
	out := DataTo{Index: i, RemoteKey: d.RemoteKey, Conversion: d.ConversionStrategy}
	if d.StoreRef == nil {
		return out, field + ".storeRef is required: name a store of spec.secretStoreRefs or select stores by labelSelector"
	}
	if msg := storeRefIsValid(field+".storeRef", *d.StoreRef); msg != "" {
		return out, msg
	}
	out.Store = storeRef(*d.StoreRef)
	if d.StoreRef.Name == "" {
		out.Store.Name = ""
		out.Selector, _ = metav1.LabelSelectorAsSelector(d.StoreRef.LabelSelector)
	}
	if d.Match != nil && d.Match.RegExp != "" {
		re, err := regexp.Compile(d.Match.RegExp)
		if err != nil {
			return out, fmt.Sprintf("%s.match.regexp %q: %v", field, d.Match.RegExp, err)
		}
		out.Match = re
	}
	if d.RemoteKey != "" && len(d.Rewrite) > 0 {
		return out, field + ": remoteKey and rewrite are mutually exclusive (rewrite names the remote secret of each key; remoteKey bundles every key into one)"
	}
	for j, rw := range d.Rewrite {
		switch {
		case rw.Regexp != nil && rw.Transform != nil, rw.Regexp == nil && rw.Transform == nil:
			return out, fmt.Sprintf("%s.rewrite[%d] must set exactly one of regexp and transform", field, j)
		case rw.Regexp != nil:
			if _, err := regexp.Compile(rw.Regexp.Source); err != nil {
				return out, fmt.Sprintf("%s.rewrite[%d].regexp.source %q: %v", field, j, rw.Regexp.Source, err)
			}
			out.Rewrite = append(out.Rewrite, engine.Rewrite{RegexpSource: rw.Regexp.Source, RegexpTarget: rw.Regexp.Target})
		default:
			if err := render.Validate(fmt.Sprintf("%s.rewrite[%d].transform", field, j), rw.Transform.Template); err != nil {
				return out, err.Error()
			}
			out.Rewrite = append(out.Rewrite, engine.Rewrite{Transform: rw.Transform.Template})
		}
	}
	if usesMetadata(d.Metadata) {
		out.Metadata = d.Metadata.Raw
	}
	if msg := conversionIsKnown(field, d.ConversionStrategy); msg != "" {
		return out, msg
	}
	return out, ""
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
