package provider

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ClassKind is the kind of the stores a SecretProviderClass
// (secrets-store.csi.x-k8s.io/v1) describes, in Store.Kind.
const ClassKind = "SecretProviderClass"

// Class is what a store of kind ClassKind is built from: a
// SecretProviderClass's spec.provider and spec.parameters, and the
// ServiceAccount whose identity reads through it (a SecretSync's
// spec.serviceAccountName). Every field is part of the client's identity:
// a change of any of them builds a new client, and two ServiceAccounts never
// share one.
type Class struct {
	// Provider is the SecretProviderClass's spec.provider, such as azure.
	Provider string
	// Parameters are its spec.parameters, as the CSI driver's provider of
	// that name reads them.
	Parameters map[string]string
	// ServiceAccount names the ServiceAccount, in the store's namespace,
	// whose identity the client uses.
	ServiceAccount string
}

// ClassObject is one object a class provides, under the file name the CSI
// driver would mount it as (a SecretSync's sourcePath), with the refs that
// read it through the class's client. Refs are opaque to the caller.
type ClassObject struct {
	// File is the object's file name.
	File string
	// Ref reads the file's content.
	Ref Ref
	// CertRef and KeyRef read the certificates and the private key of the
	// file's content (PEM, or PKCS#12 without a password), as a
	// kubernetes.io/tls Secret holds them in tls.crt and tls.key.
	CertRef, KeyRef Ref
}

// ClassProvider is implemented by providers that also serve
// SecretProviderClasses. For a store whose Class is set, ValidateSpec checks
// the class's parameters and NewClient builds a client that reads the refs
// ClassObjects returns.
type ClassProvider interface {
	Provider
	// ClassObjects parses a class's parameters into the objects it
	// provides, in the order they are listed; a later object with the same
	// file name replaces an earlier one, as when the CSI driver writes them.
	// It does no I/O, and its errors name parameters, never values.
	ClassObjects(params map[string]string) ([]ClassObject, error)
}

// RegisterClass makes the provider registered under name serve
// SecretProviderClasses whose spec.provider is class. That provider must
// implement ClassProvider.
func (r *Registry) RegisterClass(class, name string) {
	if r.classes == nil {
		r.classes = map[string]string{}
	}
	r.classes[class] = name
}

// RegisterAnyClass makes the provider registered under name serve the
// SecretProviderClasses whose spec.provider no provider is registered for
// with RegisterClass (the CSI provider plugins, csiplugin). That provider
// must implement ClassProvider.
func (r *Registry) RegisterAnyClass(name string) { r.anyClass = name }

// ClassFileResolver is implemented by a ClassProvider that cannot know a
// class's files from its parameters (a CSI provider plugin decides which
// files it returns): ClassObjects returns none, and ClassFile returns the
// object for a file name a SecretSync maps (sourcePath). It does no I/O,
// and its errors name the file, never a value.
type ClassFileResolver interface {
	ClassFile(params map[string]string, file string) (ClassObject, error)
}

// Class returns the provider that serves SecretProviderClasses whose
// spec.provider is class, and its name: the one registered for class, or
// else the one registered with RegisterAnyClass, if any (never for a blank
// class).
func (r *Registry) Class(class string) (string, ClassProvider, bool) {
	name, ok := r.classes[class]
	if !ok && r.anyClass != "" && strings.TrimSpace(class) != "" {
		name, ok = r.anyClass, true
	}
	if !ok {
		return "", nil, false
	}
	p, ok := r.providers[name].(ClassProvider)
	return name, p, ok
}

// Classes lists the SecretProviderClass providers served, sorted.
func (r *Registry) Classes() []string {
	return slices.Sorted(maps.Keys(r.classes))
}

// ProviderFor returns the provider that serves store, and its name: for a
// class store the provider registered for its class, otherwise the one
// selected in spec.provider. Its errors wrap ErrInvalidConfig (no provider
// selected) or ErrNotSupported (no such provider).
func (r *Registry) ProviderFor(store Store) (string, Provider, error) {
	if store.Class != nil {
		name, p, ok := r.Class(store.Class.Provider)
		if !ok {
			return "", nil, fmt.Errorf("%w: SecretProviderClass provider %q is not supported by keyferry", ErrNotSupported, store.Class.Provider)
		}
		return name, p, nil
	}
	if store.Spec == nil {
		return "", nil, fmt.Errorf("%w: %s %q has no spec", ErrInvalidConfig, store.Kind, store.Name)
	}
	name, err := SelectedName(store.Spec.Provider)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	p, ok := r.Get(name)
	if !ok {
		return "", nil, fmt.Errorf("%w: provider %q is not supported by keyferry", ErrNotSupported, name)
	}
	return name, p, nil
}

// UnsupportedClass explains that no provider serves the SecretProviderClass
// name, whose spec.provider is class.
func (r *Registry) UnsupportedClass(name, class string) error {
	served := "none"
	if cs := r.Classes(); len(cs) > 0 {
		served = strings.Join(cs, ", ")
	}
	if strings.TrimSpace(class) == "" {
		return fmt.Errorf("SecretProviderClass %q sets no spec.provider: keyferry synchronizes SecretProviderClasses with provider %s", name, served)
	}
	return fmt.Errorf("SecretProviderClass %q uses provider %q: keyferry synchronizes SecretProviderClasses with provider %s only (for other stores, use an ExternalSecret)", name, class, served)
}
