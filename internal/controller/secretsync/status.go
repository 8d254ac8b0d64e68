package secretsync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	spcv1 "github.com/keyferry/keyferry/apis/secretsstore/v1"
	ssv1 "github.com/keyferry/keyferry/apis/secretsync/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
)

// phase is which condition a sync reports on: SecretCreated until the
// Secret was created once (status.syncHash is empty), SecretUpdated after.
type phase int

const (
	phaseCreate phase = iota
	phaseUpdate
)

func phaseOf(ss *ssv1.SecretSync) phase {
	if ss.Status.SyncHash == "" {
		return phaseCreate
	}
	return phaseUpdate
}

func (p phase) conditionType() string {
	if p == phaseCreate {
		return ssv1.ConditionTypeCreate
	}
	return ssv1.ConditionTypeUpdate
}

// reasonFor returns the condition reason and status of a failure in a phase.
// False says the user must change something; Unknown that keyferry retries a
// failure it cannot explain.
func reasonFor(k failureKind, p phase) (string, metav1.ConditionStatus) {
	byPhase := func(create, update string) string {
		if p == phaseCreate {
			return create
		}
		return update
	}
	switch k {
	case kindInput:
		return ssv1.ReasonUserInputValidationFailed, metav1.ConditionFalse
	case kindSPC:
		return ssv1.ReasonControllerSpcError, metav1.ConditionFalse
	case kindLabel:
		return byPhase(ssv1.ReasonCreateFailedInvalidLabel, ssv1.ReasonUpdateFailedInvalidLabel), metav1.ConditionFalse
	case kindAnnotation:
		return byPhase(ssv1.ReasonCreateFailedInvalidAnnotation, ssv1.ReasonUpdateFailedInvalidAnnotation), metav1.ConditionFalse
	case kindProvider:
		return byPhase(ssv1.ReasonCreateFailedProviderError, ssv1.ReasonUpdateFailedProviderError), metav1.ConditionFalse
	case kindPatch:
		return ssv1.ReasonSecretPatchFailedUnknownError, metav1.ConditionUnknown
	default:
		return ssv1.ReasonControllerInternalError, metav1.ConditionUnknown
	}
}

// kindOf classifies an error of Compile, the ownership checks or the engine.
func kindOf(err error) failureKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	var ee *engine.Error
	if !errors.As(err, &ee) {
		return kindInternal
	}
	switch ee.Reason {
	case engine.ReasonStoreNotFound, engine.ReasonStoreNotAllowed, engine.ReasonInvalidStoreConfig, engine.ReasonUnsupportedProvider,
		engine.ReasonOperatorIdentityNotAllowed:
		return kindSPC
	case engine.ReasonRemoteNotFound, engine.ReasonForbidden, engine.ReasonUnauthenticated, engine.ReasonUnreachable,
		engine.ReasonThrottled, engine.ReasonBadResponse, engine.ReasonProviderError, engine.ReasonPropertyNotFound, engine.ReasonInvalidValue:
		return kindProvider
	case engine.ReasonInvalidSpec:
		return kindInput
	case engine.ReasonSecretNotOwned:
		return kindLabel
	case engine.ReasonWriteFailed, engine.ReasonSecretImmutable, engine.ReasonSecretMissing:
		return kindPatch
	default:
		return kindInternal
	}
}

// Success messages.
const (
	msgCreated        = "The Secret was created."
	msgNoValueChange  = "The provider was checked at the end of the rotation poll interval; no value changed."
	msgValueOrForced  = "The Secret was updated: a value changed, or the SecretSync or its SecretProviderClass changed, or forceSynchronization was set."
	msgRetryOwnership = " keyferry checks again every minute."
)

// setCondition sets a condition, keeping lastTransitionTime when its status
// does not change.
func setCondition(st *ssv1.SecretSyncStatus, gen int64, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: truncate(msg, 32768), ObservedGeneration: gen,
	})
}

// current returns the condition the last sync reported on, or nil before
// the Secret was first created.
func current(ss *ssv1.SecretSync) *metav1.Condition {
	if ss.Status.SyncHash == "" {
		return nil
	}
	if c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeUpdate); c != nil {
		return c
	}
	return meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeCreate)
}

// upToDate says whether the last sync succeeded for the SecretSync's
// current generation.
func upToDate(ss *ssv1.SecretSync) bool {
	c := current(ss)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == ss.Generation
}

// syncHash is the SecretSync's status.syncHash: an HMAC, keyed by the
// SecretSync's UID, of the hash of the Secret's desired content and of what
// it was synchronized from (the SecretProviderClass's UID and generation,
// the SecretSync's UID, generation and forceSynchronization). It changes
// when a value or the configuration changes, and reveals nothing about the
// values.
func syncHash(contentHash string, ss *ssv1.SecretSync, spc *spcv1.SecretProviderClass) string {
	m := hmac.New(sha256.New, []byte(ss.UID))
	m.Write([]byte(strings.Join([]string{
		contentHash,
		string(spc.UID), strconv.FormatInt(spc.Generation, 10),
		string(ss.UID), strconv.FormatInt(ss.Generation, 10),
		ss.Spec.ForceSynchronization,
	}, "\x00")))
	return hex.EncodeToString(m.Sum(nil))
}

// apiReason keeps an API error's reason and code without echoing the
// object.
func apiReason(err error) string {
	var s apierrors.APIStatus
	if errors.As(err, &s) {
		st := s.Status()
		return fmt.Sprintf("%s (%d)", st.Reason, st.Code)
	}
	return "request failed"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
