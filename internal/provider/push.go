// This file is the write side of the provider contract (PushSecret): an
// optional interface a Client implements when its store can be written.
//
// A push is split so that the decisions stay in the core and the I/O in the
// provider: Inspect reads what the remote secret is (exists, carries
// keyferry's managed-by mark, has the property, its version), the core
// decides from that state whether it may write (ownership, updatePolicy),
// and Push then writes only if the remote is still in the state inspected
// (check-and-set), so a write decided on a stale state fails instead of
// losing someone else's update. Delete removes only what keyferry pushed.
//
// As everywhere in this package, errors name remote keys and properties,
// never values.

package provider

import (
	"context"
	"errors"
	"fmt"
)

// ManagedBy is the mark keyferry (like ESO) leaves on a remote secret it
// created, where the provider has somewhere to put it: Vault's
// custom_metadata "managed-by: external-secrets", as ESO writes it, so a
// remote secret ESO pushed counts as pushed by keyferry and the other way
// round.
const (
	ManagedByKey   = "managed-by"
	ManagedByValue = "external-secrets"
)

// Errors of the write side, wrapped by Pusher implementations.
var (
	// ErrConflict: the remote secret changed between Inspect and Push (the
	// check-and-set failed); nothing was written, the push is retried.
	ErrConflict = errors.New("remote secret changed meanwhile")
	// ErrNotManaged: the remote secret exists and does not carry keyferry's
	// managed-by mark. Providers return it only from Push when the state
	// they were handed says otherwise (the core decides from Inspect).
	ErrNotManaged = errors.New("remote secret not managed by keyferry")
	// ErrInvalidPush: the provider cannot write what the PushSecret asks
	// (a key without the property a provider needs, a value that is not the
	// JSON object a provider stores); fixing the PushSecret lifts it.
	ErrInvalidPush = errors.New("invalid push")
)

// PushRef names where one pushed value goes: a remote secret and,
// optionally, one property of it (PushSecret's remoteRef).
type PushRef struct {
	RemoteKey string
	Property  string
}

func (r PushRef) String() string {
	if r.Property == "" {
		return fmt.Sprintf("%q", r.RemoteKey)
	}
	return fmt.Sprintf("%q property %q", r.RemoteKey, r.Property)
}

// PushValue is what a push writes: one key of the source Secret, or the
// whole Secret (data[].match.secretKey empty).
type PushValue struct {
	// SecretKey is the source key; empty: the whole Secret in Secret.
	SecretKey string
	// Value is the bytes of SecretKey.
	Value []byte
	// Secret is the source Secret's data, set when SecretKey is empty.
	Secret map[string][]byte
	// Type is the source Secret's type (the kubernetes provider keeps it).
	Type string
	// Labels and Annotations are the source Secret's (the kubernetes
	// provider pushes them, as ESO does).
	Labels, Annotations map[string]string
	// Metadata is the push's data[].metadata (or dataTo[].metadata) as
	// written: ESO's PushSecretMetadata object, whose spec each provider
	// defines. It is only ever set for a MetadataPusher; empty otherwise.
	Metadata []byte
	// Sources reads what the metadata references (ESO's AWS
	// resourcePolicy.policySourceRef) in the pushing object's namespace;
	// nil when the core sets none (a reference then cannot be resolved).
	Sources PushSources
}

// PushSources reads a key of a ConfigMap or Secret that a push's metadata
// references. The core binds it to the namespace of the object that
// pushes (the PushSecret), so a provider, whose client may be shared
// between namespaces, never resolves a reference in another tenant's
// namespace. Errors name the object and key, never the data; a missing
// object or key wraps ErrInvalidPush.
type PushSources interface {
	ReadKey(ctx context.Context, kind, name, key string) ([]byte, error)
}

// Whole says whether the value is the whole source Secret.
func (v PushValue) Whole() bool { return v.SecretKey == "" }

// RemoteState is what Inspect found at a PushRef. It holds no value.
type RemoteState struct {
	// Exists: the remote secret exists.
	Exists bool
	// PropertyExists: the ref names a property and the remote secret has
	// it.
	PropertyExists bool
	// Managed: the remote secret carries keyferry's (ESO's) managed-by
	// mark, so keyferry created it.
	Managed bool
	// Unmarked: the provider has no managed-by mark (webhook) and reports
	// whatever exists as Managed; only what an object recorded pushing
	// (status.syncedPushSecrets) is then known to be keyferry's.
	Unmarked bool
	// Version is the provider's token for check-and-set (a KV v2 version,
	// a resourceVersion); Push writes only while it still holds.
	Version string
}

// Present says whether what the ref names exists: the property when the
// ref names one, else the remote secret.
func (s RemoteState) Present(ref PushRef) bool {
	if ref.Property != "" {
		return s.PropertyExists
	}
	return s.Exists
}

// Pusher is implemented by clients whose store keyferry can write.
// Implementations must be safe for concurrent use.
type Pusher interface {
	// Inspect reads the state of the remote secret ref names. A missing
	// remote secret is a state (Exists false), not an error.
	Inspect(ctx context.Context, ref PushRef) (RemoteState, error)
	// Push writes v at ref, provided the remote is still as state says
	// (else an error wrapping ErrConflict), marks the remote secret as
	// keyferry's where the provider can, and returns whether it wrote
	// (false when the remote already held the value).
	Push(ctx context.Context, ref PushRef, v PushValue, state RemoteState) (bool, error)
	// Delete removes what ref names: the property (and the remote secret
	// once it holds nothing else), or the whole remote secret. It never
	// deletes a remote secret without keyferry's mark: state is what
	// Inspect returned, and a missing or unmanaged remote is left alone.
	Delete(ctx context.Context, ref PushRef, state RemoteState) error
}

// PushReadKeys is implemented by pushers whose remote secrets have more than
// one spelling for reads (Azure Key Vault reads secret "x" as "x" and as
// "secret/x"). ReadKeys returns every remote key a read of what a push to
// ref writes may use; the fetch layer invalidates the cached values of all
// of them, so an ExternalSecret reading another spelling sees the pushed
// value at once.
type PushReadKeys interface {
	ReadKeys(ref PushRef) []string
}

// MetadataPusher is implemented by pushers that honour a push's metadata
// (ESO's PushSecretMetadata: tags, labels, formats, per provider).
// CheckPushMetadata parses raw as ESO's provider does and refuses what it
// cannot honour, with an error wrapping ErrInvalidPush that names the field
// (never a value); Push then receives raw in PushValue.Metadata. A push with
// metadata to a pusher that does not implement it is refused, never pushed
// without it.
type MetadataPusher interface {
	CheckPushMetadata(raw []byte) error
}
