package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/engine/values"
	"github.com/keyferry/keyferry/internal/provider"
)

// Reasons a sync fails; they become the Ready condition's reason and the
// Event's reason, so they are stable, CamelCase and documented in
// docs/status.md.
const (
	ReasonStoreNotFound      = "StoreNotFound"
	ReasonStoreNotAllowed    = "StoreNotAllowed"
	ReasonInvalidStoreConfig = "InvalidStoreConfig"
	// ReasonOperatorIdentityNotAllowed: a namespaced store would use one of
	// keyferry's own identities (or send a token the API server accepts
	// outside the cluster), which only ClusterSecretStores may.
	ReasonOperatorIdentityNotAllowed = "OperatorIdentityNotAllowed"
	ReasonUnsupportedProvider        = "UnsupportedProvider"
	ReasonRemoteNotFound             = "RemoteSecretNotFound"
	ReasonForbidden                  = "ProviderForbidden"
	ReasonUnauthenticated            = "ProviderAuthFailed"
	ReasonUnreachable                = "ProviderUnreachable"
	ReasonThrottled                  = "ProviderThrottled"
	ReasonBadResponse                = "ProviderBadResponse"
	ReasonProviderError              = "ProviderError"
	ReasonPropertyNotFound           = "PropertyNotFound"
	ReasonInvalidValue               = "InvalidValue"
	ReasonTemplateFailed             = "TemplateFailed"
	// ReasonTemplateBudgetExceeded: a template went over the sandbox's
	// output size, value size, step or time budget (docs/templates.md).
	ReasonTemplateBudgetExceeded = "TemplateBudgetExceeded"
	ReasonInvalidSpec            = "InvalidSpec"
	ReasonSecretNotOwned         = "SecretNotOwned"
	ReasonSecretMissing          = "SecretMissing"
	ReasonSecretImmutable        = "SecretImmutable"
	ReasonWriteFailed            = "SecretWriteFailed"
	// ReasonMetadataNotSupported: remoteRef.metadataPolicy Fetch asks for
	// the metadata of a secret in a store that has none (webhook, file,
	// fake, Vault KV v1).
	ReasonMetadataNotSupported = "MetadataNotSupported"
	// ReasonGenericTargetsDisabled: spec.target.manifest names a kind other
	// than Secret and the operator runs without
	// --unsafe-allow-generic-targets.
	ReasonGenericTargetsDisabled = "GenericTargetsDisabled"
	// ReasonTargetKindUnsupported: spec.target.manifest names a kind the
	// API server does not serve, or a cluster-scoped one.
	ReasonTargetKindUnsupported = "TargetKindUnsupported"
	// ReasonTargetForbidden: the operator's RBAC does not let it read or
	// write the manifest target's kind (chart value
	// genericTargets.resources).
	ReasonTargetForbidden = "TargetForbidden"
)

// Error is a failed sync with the reason shown to the user. Its message
// never contains a secret value.
type Error struct {
	Reason string
	Err    error
	// RetryAfter, when set, is how long the store asked to wait.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func fail(reason string, format string, args ...any) *Error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// classify wraps a fetch error with the reason that fits it.
func classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	out := &Error{Reason: ReasonProviderError, Err: err}
	var te *provider.ThrottledError
	var be *fetch.BackoffError
	switch {
	case errors.As(err, &te):
		out.Reason, out.RetryAfter = ReasonThrottled, te.RetryAfter
	case errors.Is(err, provider.ErrOperatorIdentity):
		out.Reason = ReasonOperatorIdentityNotAllowed
	case errors.Is(err, provider.ErrNotFound):
		out.Reason = ReasonRemoteNotFound
	case errors.Is(err, provider.ErrForbidden):
		out.Reason = ReasonForbidden
	case errors.Is(err, provider.ErrUnauthenticated):
		out.Reason = ReasonUnauthenticated
	case errors.Is(err, provider.ErrUnreachable), errors.Is(err, context.DeadlineExceeded):
		out.Reason = ReasonUnreachable
	case errors.Is(err, provider.ErrInvalidConfig):
		out.Reason = ReasonInvalidStoreConfig
	case errors.Is(err, provider.ErrMetadataNotSupported):
		out.Reason = ReasonMetadataNotSupported
	case errors.Is(err, provider.ErrNotSupported):
		out.Reason = ReasonUnsupportedProvider
	case errors.Is(err, provider.ErrBadResponse), errors.Is(err, values.ErrNotJSON):
		out.Reason = ReasonBadResponse
	case errors.Is(err, values.ErrPropertyNotFound):
		out.Reason = ReasonPropertyNotFound
	}
	if errors.As(err, &be) && out.RetryAfter == 0 {
		out.RetryAfter = time.Until(be.Until)
	}
	return out
}
