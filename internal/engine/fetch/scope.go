// This file holds the keys that decide which requests share a client and
// its cache: a backendKey per client, built by keyFor from what the client
// depends on (configuration, store object, the namespace it is built for),
// and the identity of the store object a key serves.

package fetch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

var (
	secretKeySelectorType = reflect.TypeOf(esv1.SecretKeySelector{})
	serviceAccountType    = reflect.TypeOf(esv1.ServiceAccountSelector{})
	caProviderType        = reflect.TypeOf(esv1.CAProvider{})
	configMapRefType      = reflect.TypeOf(esv1.ConfigMapReference{})
	secretObjectRefType   = reflect.TypeOf(esv1.SecretObjectRef{})
)

// NeedsNamespace says whether a ClusterSecretStore's provider configuration
// has a credential reference without a namespace: such a reference resolves
// in the namespace of the object using the store, so its client (and cache)
// cannot be shared across namespaces.
func NeedsNamespace(spec *esv1.SecretStoreSpec) bool {
	if spec == nil || spec.Provider == nil {
		return false
	}
	return walk(reflect.ValueOf(spec.Provider).Elem())
}

func walk(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer:
		return !v.IsNil() && walk(v.Elem())
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if walk(v.Index(i)) {
				return true
			}
		}
	case reflect.Struct:
		switch v.Type() {
		case secretKeySelectorType:
			sel := v.Interface().(esv1.SecretKeySelector)
			return sel.Name != "" && (sel.Namespace == nil || *sel.Namespace == "")
		case serviceAccountType:
			sel := v.Interface().(esv1.ServiceAccountSelector)
			return sel.Name != "" && (sel.Namespace == nil || *sel.Namespace == "")
		case caProviderType:
			sel := v.Interface().(esv1.CAProvider)
			return sel.Namespace == nil || *sel.Namespace == ""
		case configMapRefType:
			sel := v.Interface().(esv1.ConfigMapReference)
			return sel.Name != "" && sel.Namespace == ""
		case secretObjectRefType:
			sel := v.Interface().(esv1.SecretObjectRef)
			return sel.Name != "" && sel.Namespace == ""
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() && walk(v.Field(i)) {
				return true
			}
		}
	}
	return false
}

// ScopedToNamespace says whether clients built for store depend on the
// namespace they are built for: a credential reference resolves there
// (NeedsNamespace), or the provider says its client uses it otherwise
// (provider.NamespaceScoped).
func ScopedToNamespace(p provider.Provider, backend provider.Store) bool {
	if NeedsNamespace(backend.Spec) {
		return true
	}
	ns, ok := p.(provider.NamespaceScoped)
	return ok && ns.ScopedToNamespace(backend)
}

// backendKey identifies a client and its cache: the provider configuration,
// plus the store's identity unless the configuration is shareable.
type backendKey struct {
	config                string
	kind, namespace, name string
	// scope is the namespace the client is built for, set when the client
	// depends on it (see keyFor); it keeps tenants' clients and caches
	// apart even when the configuration is shared.
	scope string
	// cluster: built for a ClusterSecretStore. provider.Admit gives a
	// client the rules of the store it is built for (which of keyferry's
	// identities it may use, which tokens it may mint), so a namespaced
	// store never shares a client a ClusterSecretStore built, nor the reverse.
	cluster bool
}

func (k backendKey) String() string {
	var s string
	switch {
	case k.kind == "" && k.cluster:
		s = "shared:cluster:" + k.config
	case k.kind == "":
		s = "shared:" + k.config
	case k.namespace == "":
		s = k.kind + "/" + k.name
	default:
		s = k.kind + "/" + k.namespace + "/" + k.name
	}
	if k.scope != "" && k.scope != k.namespace {
		s += " (for namespace " + k.scope + ")"
	}
	return s
}

// identity names a store object (and, for a ClusterSecretStore whose
// credentials resolve in the user's namespace, that namespace; for a
// SecretProviderClass, the ServiceAccount that reads through it, so that
// the clients of two ServiceAccounts live side by side).
type identity struct {
	kind, namespace, name, scope string
	serviceAccount               string
}

// keyFor returns the key of the client (and value cache) that serves store
// for a requester whose references resolve in namespace ns, and the
// identity of the store object it serves.
//
// The key is built from what the client depends on, so that two requests
// share a client only when it would be the same client:
//   - the provider configuration, always;
//   - the store object (kind, namespace, name), unless the provider says
//     identical configurations may share (provider.Shareable);
//   - whether the store is a ClusterSecretStore, since Admit restricts a
//     namespaced store's client more;
//   - the namespace the client is built for, whenever the client depends on
//     it (ScopedToNamespace), even for a shareable configuration: tenant B
//     must never be answered by a client (or a cache) built for tenant A.
//
// For a SecretProviderClass the configuration is the whole Class: its
// provider, its parameters and the ServiceAccount that reads through it, so
// a parameter change builds a new client and two ServiceAccounts never
// share one.
func keyFor(p provider.Provider, name string, backend provider.Store, ns string) (backendKey, identity) {
	id := identity{kind: backend.Kind, namespace: backend.Namespace, name: backend.Name}
	if backend.Class != nil {
		id.serviceAccount = backend.Class.ServiceAccount
	}
	scoped := ScopedToNamespace(p, backend)
	if backend.IsCluster() && scoped {
		id.scope = ns
	}
	sum := sha256.Sum256(configOf(backend))
	key := backendKey{config: name + "/" + hex.EncodeToString(sum[:12]), cluster: backend.IsCluster()}
	if scoped {
		key.scope = ns
	}
	if sh, ok := p.(provider.Shareable); !ok || !sh.Shareable(backend) {
		key.kind, key.namespace, key.name = id.kind, id.namespace, id.name
	}
	return key, id
}

// configOf is the configuration a client is built from, as bytes to hash:
// a SecretProviderClass's Class, or a store's spec.provider. Both encode
// deterministically (encoding/json sorts map keys).
func configOf(backend provider.Store) []byte {
	var b []byte
	if backend.Class != nil {
		b, _ = json.Marshal(backend.Class)
	} else if backend.Spec != nil {
		b, _ = json.Marshal(backend.Spec.Provider)
	}
	return b
}
