package pushsecret

import (
	"fmt"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/provider"
)

// Reasons of the Ready condition and Events besides the engine's failure
// reasons (docs/status.md, "PushSecret Ready").
const (
	// ReasonSynced: every value was pushed (ESO's reason).
	ReasonSynced = "Synced"
	// ReasonSourceDeleted: the source Secret is gone and, by deletionPolicy
	// Delete, what was pushed was deleted (ESO's reason).
	ReasonSourceDeleted = "SourceDeleted"
	// ReasonRemoteNotManaged: the remote secret exists and keyferry did not
	// create it; it is never overwritten.
	ReasonRemoteNotManaged = "RemoteSecretNotManaged"
	// ReasonRemoteChanged: the remote secret changed between keyferry's
	// read and its write (check-and-set); the push is retried.
	ReasonRemoteChanged = "RemoteSecretChanged"
	// ReasonInvalidPush: the provider cannot write what an entry asks.
	ReasonInvalidPush = "InvalidPush"
	// ReasonSourceNotFound: the source Secret does not exist.
	ReasonSourceNotFound = "SourceSecretNotFound"
	// ReasonSourceKeyNotFound: the source Secret lacks a key data[] names.
	ReasonSourceKeyNotFound = "SourceKeyNotFound"
)

// Action is what a decision says to do with one push.
type Action string

const (
	// ActionPush writes the value.
	ActionPush Action = "Push"
	// ActionSkip leaves the remote as it is, successfully (IfNotExists).
	ActionSkip Action = "Skip"
	// ActionRefuse leaves the remote as it is and fails the sync.
	ActionRefuse Action = "Refuse"
)

// Decision is the outcome of decide: an action, and for a refusal the
// reason and message of the condition.
type Decision struct {
	Action  Action
	Reason  string
	Message string
}

// pushCheck is one rule of the write decision; ok false stops the chain
// with its decision.
type pushCheck func(policy esv1alpha1.PushSecretUpdatePolicy, ref provider.PushRef, st provider.RemoteState) (Decision, bool)

// pushChecks are the rules, in order.
var pushChecks = []pushCheck{
	ifNotExistsLeavesExisting,
	remoteIsOurs,
}

// decide says whether a push may write, from the remote's state.
func decide(policy esv1alpha1.PushSecretUpdatePolicy, ref provider.PushRef, st provider.RemoteState) Decision {
	for _, check := range pushChecks {
		if d, ok := check(policy, ref, st); !ok {
			return d
		}
	}
	return Decision{Action: ActionPush}
}

// ifNotExistsLeavesExisting: with updatePolicy IfNotExists, a remote value
// that exists (the property, when the ref names one) is left as it is, as
// in ESO, whoever created it.
func ifNotExistsLeavesExisting(policy esv1alpha1.PushSecretUpdatePolicy, ref provider.PushRef, st provider.RemoteState) (Decision, bool) {
	if policy == esv1alpha1.PushSecretUpdatePolicyIfNotExists && st.Present(ref) {
		return Decision{Action: ActionSkip, Message: fmt.Sprintf("remote %s exists and updatePolicy is IfNotExists", ref)}, false
	}
	return Decision{}, true
}

// remoteIsOurs: a remote secret that exists without keyferry's (ESO's)
// managed-by mark was not created by keyferry and is never written.
func remoteIsOurs(_ esv1alpha1.PushSecretUpdatePolicy, ref provider.PushRef, st provider.RemoteState) (Decision, bool) {
	if st.Exists && !st.Managed {
		return Decision{Action: ActionRefuse, Reason: ReasonRemoteNotManaged,
			Message: fmt.Sprintf("remote secret %q exists and was not created by keyferry (it lacks the managed-by mark); keyferry never overwrites it: push to another remoteKey, or delete the remote secret", ref.RemoteKey)}, false
	}
	return Decision{}, true
}
