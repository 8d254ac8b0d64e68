// Package generator holds the pure logic of External Secrets Operator's
// generators that need nothing but randomness or their own spec: Password,
// UUID and Fake. Each returns the generated values as ESO's generators do,
// a map from key to value (Password: "password" or spec.secretKeys; UUID:
// "uuid"; Fake: spec.data), and never talks to Kubernetes or a provider.
//
// Randomness comes from crypto/rand only. A spec that cannot produce a value
// (more digits and symbols than the length, more distinct characters than
// exist when repeats are not allowed, an unknown encoding, duplicate keys)
// is refused with a *SpecError naming the field, which errors.Is matches
// against ErrInvalidSpec; its message never contains a generated value.
//
// It also reads the specs of VaultDynamicSecret and GCRAccessToken, which
// keyferry serves as opaque JSON (ParseVaultDynamicSecret,
// ParseGCRAccessToken); their values come from Vault and Google through the
// vault and gcpsm providers (provider.Generator), not from here.
//
// Wiring generators into the ExternalSecret path (sourceRef.generatorRef and
// the rules of when values are generated anew) is internal/engine's
// (generators.go, generate.go): this package only makes values.
package generator

import (
	"errors"
	"fmt"
)

// ErrInvalidSpec is matched (errors.Is) by every error a spec causes.
var ErrInvalidSpec = errors.New("invalid generator spec")

// SpecError is a spec that cannot generate a value: Field is the spec
// field at fault (e.g. "spec.digits"), Message says why.
type SpecError struct {
	Kind    string
	Field   string
	Message string
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("%s %s: %s", e.Kind, e.Field, e.Message)
}

// Is makes errors.Is(err, ErrInvalidSpec) true.
func (e *SpecError) Is(target error) bool { return target == ErrInvalidSpec }

func specErrorf(kind, field, format string, args ...any) error {
	return &SpecError{Kind: kind, Field: field, Message: fmt.Sprintf(format, args...)}
}
