// Package provider defines the contract between keyferry's engine and the
// secret managers it reads: a Provider builds a Client from a store's
// configuration; a Client fetches values. Providers register themselves in a
// Registry by the name of their field in SecretStore.spec.provider.
//
// Providers return raw values; the engine applies properties (gjson paths),
// decoding and templates, and caches and coalesces fetches, so a provider never
// needs to. Optional interfaces add listing (Lister), batching (BatchGetter)
// and change notification (Watcher). A client lists; the fetch layer selects
// the listed names a find asks for and reads their values through its cache,
// so a find costs the calls the store's API needs and each is rate-limited.
//
// A provider must never put a secret value into an error, a log line or a
// metric: errors name keys, never values.
package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// Ref names one remote value: a key and, optionally, a version.
type Ref struct {
	Key     string
	Version string
	// Metadata asks for the remote secret's metadata (its tags, labels or
	// custom metadata, as ESO's remoteRef.metadataPolicy Fetch does) instead
	// of its value; each provider's metadata.go says what it returns. A provider
	// without metadata refuses such a ref with an error wrapping
	// ErrMetadataNotSupported and never returns the value for it.
	Metadata bool
}

func (r Ref) String() string {
	s := r.Key
	if r.Version != "" {
		s += "@" + r.Version
	}
	if r.Metadata {
		s += " (metadata)"
	}
	return s
}

// Value is one fetched remote value.
type Value struct {
	// Data is the value as the store keeps it. For a structured value (a Vault
	// KV entry, a Kubernetes Secret) it is the JSON document, byte for byte
	// what ESO would write for the whole value, so property paths into nested
	// fields work.
	Data []byte
	// Fields, when set, are the exact bytes of a structured value's fields. The
	// engine reads a property from Fields first (binary-safe) and falls back to
	// a gjson path over Data.
	Fields map[string][]byte
	// Version is the version the store returned, if it has versions.
	Version string
}

// Find selects many remote values (dataFrom.find). Name is a regular
// expression already compiled by the engine's validation; Path is a prefix.
// Providers never see a Find: they list (Lister), and the fetch layer
// selects by Name and reads the values.
type Find struct {
	Path string
	// Name is the regular expression on the remote name; empty matches all.
	Name string
	Tags map[string]string
}

// Matcher compiles the find's name expression once; an empty one matches
// every name.
func (f Find) Matcher() (func(name string) bool, error) {
	if f.Name == "" {
		return func(string) bool { return true }, nil
	}
	re, err := regexp.Compile(f.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: find.name.regexp %q: %v", ErrInvalidConfig, f.Name, err)
	}
	return re.MatchString, nil
}

// Client reads from one configured store. Implementations must be safe for
// concurrent use.
type Client interface {
	// GetSecret returns one remote value. A missing key returns an error
	// wrapping ErrNotFound.
	GetSecret(ctx context.Context, ref Ref) (Value, error)
	// Validate checks that the store is reachable and the credentials work,
	// cheaply. It may return nil without calling the store.
	Validate(ctx context.Context) error
	// Close releases what the client holds.
	Close(ctx context.Context) error
}

// BatchGetter is implemented by clients that can fetch several values in
// one call. The engine groups the refs of one refresh by store and calls
// GetSecrets instead of GetSecret when the client implements it. Results and
// errors are keyed by ref; a ref in neither map is treated as not found.
type BatchGetter interface {
	GetSecrets(ctx context.Context, refs []Ref) (map[Ref]Value, map[Ref]error)
}

// BatchSizer is implemented by a BatchGetter whose batch call takes at most
// BatchSize refs; the fetch layer hands it no more per GetSecrets, so every
// backend call is admitted through the store's rate limiter.
type BatchSizer interface {
	BatchSize() int
}

// List is what a listing selects: remote names starting with Path (in the
// provider's own sense of a path) that carry every tag (label) in Tags.
// Providers filter server-side what their API can and check the rest.
type List struct {
	Path string
	Tags map[string]string
	// Match is the find's name filter, which the fetch layer applies to
	// every Listed.Name anyway. A provider that spends a call per listed
	// name to filter further (Vault's custom_metadata for tags) calls it
	// first to save those calls; others ignore it. Nil matches every name.
	Match func(name string) bool
}

// Listed is one remote value a listing found.
type Listed struct {
	// Name is the remote name, the key of the value in the find's result and
	// what the find's name expression is matched against.
	Name string
	// Ref is what GetSecret reads to get the value: the fetch layer reads it
	// (cached, coalesced, batched, rate-limited like any Get) unless Value is
	// set, and caches a listed Value under it. It is empty when no ref reads
	// the value; Value is then set.
	Ref Ref
	// Value is set when the listing call returned the value itself
	// (Kubernetes Secrets, Parameter Store by path, files, fake).
	Value *Value
}

// Lister is implemented by clients that can list (dataFrom.find). Clients
// that cannot list do not implement it, or return pages that fail with an
// error wrapping ErrNotSupported.
type Lister interface {
	// ListSecrets starts a listing. Its pages are fetched one at a time so
	// that the fetch layer admits each through the store's rate limiter.
	ListSecrets(ctx context.Context, list List) ListPager
}

// ListPager returns a listing one page at a time. Each NextPage makes one
// call to the store (a provider whose listing needs more calls splits it
// into more pages; a rare fallback that cannot says so where it is), so
// each call is rate-limited, backed off and counted like any other.
type ListPager interface {
	// More says whether NextPage has a page to return.
	More() bool
	// NextPage returns the next page.
	NextPage(ctx context.Context) ([]Listed, error)
}

// Pages is a ListPager over pages already at hand (a listing done in one
// call), or over a listing that cannot start.
type Pages struct {
	pages [][]Listed
	err   error
}

// OnePage returns a pager with a single page.
func OnePage(page []Listed) *Pages { return &Pages{pages: [][]Listed{page}} }

// FailedPages returns a pager whose one page fails with err, for a listing
// that cannot start (not supported, invalid configuration).
func FailedPages(err error) *Pages { return &Pages{err: err} }

// More says whether a page (or the failure) is left.
func (p *Pages) More() bool { return p.err != nil || len(p.pages) > 0 }

// NextPage returns the next page, or the failure.
func (p *Pages) NextPage(context.Context) ([]Listed, error) {
	if err := p.err; err != nil {
		p.err = nil
		return nil, err
	}
	if len(p.pages) == 0 {
		return nil, nil
	}
	page := p.pages[0]
	p.pages = p.pages[1:]
	return page, nil
}

// SinglePage returns a pager for a listing done in one call, made by
// fetch when the page is asked for.
func SinglePage(fetch func(ctx context.Context) ([]Listed, error)) ListPager {
	return &singlePage{fetch: fetch}
}

type singlePage struct {
	fetch func(ctx context.Context) ([]Listed, error)
	done  bool
}

func (p *singlePage) More() bool { return !p.done }

func (p *singlePage) NextPage(ctx context.Context) ([]Listed, error) {
	if p.done {
		return nil, nil
	}
	p.done = true
	return p.fetch(ctx)
}

// Watcher is implemented by clients that learn of changes without polling.
// Watch blocks until ctx ends, calling changed with the keys whose values
// may have changed (nil means any key).
type Watcher interface {
	Watch(ctx context.Context, changed func(keys []string)) error
}

// Shareable is implemented by providers whose clients depend only on the
// provider configuration: no credential is resolved in the store's
// namespace and nothing depends on the store's name. Stores whose
// configuration is identical then share one client and one cache, so the
// same SecretStore copied into N namespaces costs one call per value, not N.
// A provider must return false whenever the client would differ by store
// identity or namespace (credentials, CA bundles from ConfigMaps, ...). A
// client that depends on the requester's namespace in other ways (a
// template reading it) must also implement NamespaceScoped.
type Shareable interface {
	Shareable(store Store) bool
}

// Store is the store a client is built for.
type Store struct {
	// Kind is SecretStore, ClusterSecretStore or ClassKind.
	Kind string
	Name string
	// Namespace of a SecretStore; empty for a ClusterSecretStore.
	Namespace string
	Spec      *esv1.SecretStoreSpec
	// Class is set instead of Spec for a store of kind ClassKind: a
	// SecretProviderClass, served by a ClassProvider (class.go).
	Class *Class
}

// IsCluster says whether the store is a ClusterSecretStore.
func (s Store) IsCluster() bool { return s.Kind == esv1.ClusterSecretStoreKind }

// TokenRequester requests a ServiceAccount token through the TokenRequest API.
type TokenRequester interface {
	ServiceAccountToken(ctx context.Context, namespace, name string, audiences []string, expiry time.Duration) (token string, expires time.Time, err error)
}

// Options is what a provider gets to build a client.
type Options struct {
	Store Store
	// Namespace is where references without a namespace resolve: the
	// SecretStore's namespace, or for a ClusterSecretStore the namespace of
	// the object that uses it.
	Namespace string
	// Kube reads Secrets and ConfigMaps holding credentials. It is uncached.
	Kube client.Reader
	// Tokens requests ServiceAccount tokens. Admit restricts it to the
	// tokens the store may mint.
	Tokens TokenRequester
	// Policy is what the operator allows stores beyond the defaults.
	Policy Policy
	// Log never receives secret values.
	Log logr.Logger
}

// Provider builds clients for one kind of store.
type Provider interface {
	// ValidateSpec checks the provider's configuration without any I/O; the
	// error message is shown to the user in the store's status.
	ValidateSpec(store Store) error
	// NewClient builds a client. It may read credentials and request tokens.
	NewClient(ctx context.Context, opts Options) (Client, error)
}

// Errors that clients wrap so the engine can tell the user what happened.
var (
	// ErrNotFound: the key (or version) does not exist.
	ErrNotFound = errors.New("secret not found")
	// ErrForbidden: the credentials are valid but lack permission.
	ErrForbidden = errors.New("permission denied")
	// ErrUnauthenticated: the credentials were refused.
	ErrUnauthenticated = errors.New("authentication failed")
	// ErrUnreachable: the store could not be reached.
	ErrUnreachable = errors.New("store unreachable")
	// ErrInvalidConfig: the store's configuration cannot work.
	ErrInvalidConfig = errors.New("invalid store configuration")
	// ErrNotSupported: the provider does not support the operation.
	ErrNotSupported = errors.New("not supported by this provider")
	// ErrBadResponse: the store answered with something that is not a value
	// (for example non-JSON where JSON was expected).
	ErrBadResponse = errors.New("unexpected response from store")
)

// ThrottledError says the store asked keyferry to slow down.
type ThrottledError struct {
	// RetryAfter is how long the store asked to wait; 0 if it did not say.
	RetryAfter time.Duration
	Err        error
}

func (e *ThrottledError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("throttled by store (retry after %s): %v", e.RetryAfter, e.Err)
	}
	return fmt.Sprintf("throttled by store: %v", e.Err)
}

func (e *ThrottledError) Unwrap() error { return e.Err }

// Registry maps provider names (the field names of
// SecretStore.spec.provider) to providers.
type Registry struct {
	providers map[string]Provider
	// classes maps a SecretProviderClass's spec.provider to the name of
	// the provider that serves it (RegisterClass, class.go).
	classes map[string]string
	// anyClass names the provider that serves every other spec.provider
	// (RegisterAnyClass, class.go); empty: none.
	anyClass string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{providers: map[string]Provider{}} }

// Register adds a provider under name; a second registration of the same
// name replaces the first.
func (r *Registry) Register(name string, p Provider) { r.providers[name] = p }

// Get returns the provider registered under name.
func (r *Registry) Get(name string) (Provider, bool) {
	p, ok := r.providers[name]
	return p, ok
}

// Names lists the registered providers.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.providers))
	for n := range r.providers {
		out = append(out, n)
	}
	return out
}
