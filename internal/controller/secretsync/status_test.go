package secretsync

import (
	"errors"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ssv1 "github.com/keyferry/keyferry/apis/secretsync/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
)

// Each engine reason lands on the Sync Controller's reason a user of it
// expects: what the SecretProviderClass (or the identity it names) gets
// wrong is ControllerSpcError, False; what the provider answers is a
// provider error; an unexplained failure is Unknown.
func TestEngineReasonsMapToSecretSyncReasons(t *testing.T) {
	tests := []struct {
		reason     string
		wantReason string
		wantStatus metav1.ConditionStatus
	}{
		{engine.ReasonStoreNotFound, ssv1.ReasonControllerSpcError, metav1.ConditionFalse},
		{engine.ReasonInvalidStoreConfig, ssv1.ReasonControllerSpcError, metav1.ConditionFalse},
		{engine.ReasonUnsupportedProvider, ssv1.ReasonControllerSpcError, metav1.ConditionFalse},
		{engine.ReasonOperatorIdentityNotAllowed, ssv1.ReasonControllerSpcError, metav1.ConditionFalse},
		{engine.ReasonRemoteNotFound, ssv1.ReasonCreateFailedProviderError, metav1.ConditionFalse},
		{engine.ReasonUnreachable, ssv1.ReasonCreateFailedProviderError, metav1.ConditionFalse},
		{engine.ReasonInvalidSpec, ssv1.ReasonUserInputValidationFailed, metav1.ConditionFalse},
		{engine.ReasonWriteFailed, ssv1.ReasonSecretPatchFailedUnknownError, metav1.ConditionUnknown},
		{"SomethingNew", ssv1.ReasonControllerInternalError, metav1.ConditionUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			err := &engine.Error{Reason: tt.reason, Err: errors.New("x")}
			reason, status := reasonFor(kindOf(err), phaseCreate)
			if reason != tt.wantReason || status != tt.wantStatus {
				t.Fatalf("%s maps to %s/%s, want %s/%s", tt.reason, reason, status, tt.wantReason, tt.wantStatus)
			}
		})
	}
}
