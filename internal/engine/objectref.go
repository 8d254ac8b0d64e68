package engine

import (
	"errors"
	"fmt"
	"strings"
)

// ObjectRef identifies the object a Secret is written for (an ExternalSecret,
// a SecretSync): the owner of a Plan and the subscriber the fetch layer tells
// when a value it reads changes. Namespace is empty for cluster-scoped kinds.
//
// An ObjectRef has two string forms, both fixed:
//
//   - String, "Kind/namespace/name": the subscriber in the fetch layer, turned
//     back into an ObjectRef by ParseObjectRef when a change notification
//     reaches the operator.
//   - ManagedBy, "Kind/name": the writer stored on Secrets in the
//     keyferry.io/owner and keyferry.io/adopt annotations and as a key of
//     keyferry.io/merged-keys-by-writer. Existing Secrets carry this format,
//     so it never changes; ParseManagedBy reads it back given the Secret's
//     namespace.
type ObjectRef struct {
	Kind, Namespace, Name string
}

// String returns "Kind/namespace/name", the subscriber form.
func (r ObjectRef) String() string { return r.Kind + "/" + r.Namespace + "/" + r.Name }

// ManagedBy returns "Kind/name", the form stored on the Secrets r writes
// (keyferry.io/owner, keyferry.io/adopt, keyferry.io/merged-keys-by-writer).
// The Secret's own namespace supplies the rest.
func (r ObjectRef) ManagedBy() string { return r.Kind + "/" + r.Name }

var (
	errEmptyKind = errors.New("kind is empty")
	errEmptyName = errors.New("name is empty")
)

// ParseObjectRef parses the subscriber form "Kind/namespace/name" (String).
// Kind and name must be set; the namespace may be empty (cluster-scoped
// kinds). No part may contain "/".
func ParseObjectRef(s string) (ObjectRef, error) {
	kind, rest, ok := strings.Cut(s, "/")
	if !ok {
		return ObjectRef{}, fmt.Errorf("object reference %q: want Kind/namespace/name", s)
	}
	ns, name, ok := strings.Cut(rest, "/")
	if !ok {
		return ObjectRef{}, fmt.Errorf("object reference %q: want Kind/namespace/name", s)
	}
	ref := ObjectRef{Kind: kind, Namespace: ns, Name: name}
	if err := ref.validate(); err != nil {
		return ObjectRef{}, fmt.Errorf("object reference %q: %w", s, err)
	}
	return ref, nil
}

// ParseManagedBy parses the form "Kind/name" (ManagedBy) read from an
// annotation of a Secret in namespace. Annotations are user input: a value
// that is not exactly a kind and a name is an error.
func ParseManagedBy(namespace, s string) (ObjectRef, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok {
		return ObjectRef{}, fmt.Errorf("writer %q: want Kind/name", s)
	}
	ref := ObjectRef{Kind: kind, Namespace: namespace, Name: name}
	if err := ref.validate(); err != nil {
		return ObjectRef{}, fmt.Errorf("writer %q: %w", s, err)
	}
	return ref, nil
}

// validate checks that r has a kind and a name and that no part contains the
// separator, so that both string forms parse back to r.
func (r ObjectRef) validate() error {
	switch {
	case r.Kind == "":
		return errEmptyKind
	case r.Name == "":
		return errEmptyName
	case strings.Contains(r.Kind, "/"), strings.Contains(r.Namespace, "/"), strings.Contains(r.Name, "/"):
		return errors.New(`a part contains "/"`)
	}
	return nil
}
