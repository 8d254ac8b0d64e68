// Package engine executes sync plans: it fetches values through the shared
// fetch layer, renders templates, and applies the result to a Secret with
// ownership checks. Front-end controllers compile their objects into a Plan
// (a pure step) and report the Result in their own status.
package engine

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/render"
	"github.com/keyferry/keyferry/internal/engine/values"
	"github.com/keyferry/keyferry/internal/provider"
)

// Plan is everything needed to produce one Secret.
type Plan struct {
	// Owner is the object the Secret belongs to.
	Owner Owner
	// Target describes the Secret.
	Target Target
	// Sources are the values to fetch, in order; later keys win.
	Sources []Source
	// Template, when set, shapes the Secret from the fetched data.
	Template *Template
	// MaxAge accepts values the fetch layer fetched this recently (the
	// refresh window); 0 fetches fresh.
	MaxAge time.Duration
	// Generation says when the plan's generator sources make new values
	// (GenerateChecks); unused without generator sources.
	Generation Generation
}

// Owner identifies the object a Secret is written for.
type Owner struct {
	APIVersion, Kind string
	Namespace, Name  string
	UID              types.UID
}

// Ref returns the owner's identity.
func (o Owner) Ref() ObjectRef { return ObjectRef{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name} }

// Subscriber is the owner's identity in the fetch layer
// ("Kind/namespace/name", ObjectRef.String).
func (o Owner) Subscriber() string { return o.Ref().String() }

// Target is the Secret to write.
type Target struct {
	Name           string
	Type           corev1.SecretType
	Labels         map[string]string
	Annotations    map[string]string
	CreationPolicy esv1.CreationPolicy
	DeletionPolicy esv1.DeletionPolicy
	Immutable      bool
	// ManagedBy is the value of the ownership annotation; front-ends use
	// it to recognise their Secrets: Owner.Ref().ManagedBy(), for example
	// "ExternalSecret/name" (ParseManagedBy reads it back).
	ManagedBy string
	// Controller-ownership: set a controller ownerReference to Owner.
	SetOwnerReference bool
	// Manifest, when set, makes the target an object of another kind than
	// Secret (ESO's spec.target.manifest): a v1 ConfigMap (manifest.go) or
	// any other namespaced kind (manifest_object.go). Nil: a Secret.
	Manifest *Manifest
}

// StoreRef names a store: a SecretStore (in the owner's namespace), a
// ClusterSecretStore, or a SecretProviderClass (in the owner's namespace)
// with the ServiceAccount whose identity reads through it.
type StoreRef struct {
	Kind, Name string
	// ServiceAccount is set for a SecretProviderClass only (a SecretSync's
	// spec.serviceAccountName).
	ServiceAccount string
}

// Source is one fetch: exactly one of Data, Extract, Find and Generator is
// set. A Generator source has no Store.
type Source struct {
	Store     StoreRef
	Data      *DataSource
	Extract   *ExtractSource
	Find      *FindSource
	Generator *GeneratorSource
}

// DataSource maps one remote value to one Secret key.
type DataSource struct {
	SecretKey      string
	Ref            provider.Ref
	Property       string
	Decoding       esv1.ExternalSecretDecodingStrategy
	NullBytePolicy esv1.ExternalSecretNullBytePolicy
}

// ExtractSource maps the fields of one structured remote value to keys.
type ExtractSource struct {
	Ref            provider.Ref
	Property       string
	Decoding       esv1.ExternalSecretDecodingStrategy
	Conversion     esv1.ExternalSecretConversionStrategy
	NullBytePolicy esv1.ExternalSecretNullBytePolicy
	Rewrite        []Rewrite
}

// FindSource maps many remote values to keys named after them.
type FindSource struct {
	Find           provider.Find
	Decoding       esv1.ExternalSecretDecodingStrategy
	Conversion     esv1.ExternalSecretConversionStrategy
	NullBytePolicy esv1.ExternalSecretNullBytePolicy
	Rewrite        []Rewrite
}

// Rewrite renames keys: by regexp, or by a template over .value (the key).
type Rewrite struct {
	RegexpSource, RegexpTarget string
	Transform                  string
	// Merge, when set, is a rewrite.merge step: it works on the whole map
	// (ESO's Extract or JSON strategy), not key by key.
	Merge *values.MergeOptions
}

// Template shapes the Secret. Items render into data, labels and
// annotations; with MergeFetched the fetched data is kept under the
// rendered keys (mergePolicy Merge); PassThrough keeps the fetched data when
// no item renders data (ESO: a template with no data only sets metadata).
type Template struct {
	Items        []render.Item
	MergeFetched bool
	// TemplateFrom sources to resolve at sync time (ConfigMaps and Secrets
	// in the owner's namespace).
	From []TemplateFrom
}

// TemplateFrom is a templateFrom entry whose templates are read at sync time.
type TemplateFrom struct {
	ConfigMap, Secret string
	Items             []TemplateFromItem
	Target            render.Target
}

// TemplateFromItem is one key of a templateFrom source.
type TemplateFromItem struct {
	Key           string
	KeysAndValues bool
}
