package pushsecret

import (
	"testing"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/provider"
)

func TestDecide(t *testing.T) {
	replace, ifNot := esv1alpha1.PushSecretUpdatePolicyReplace, esv1alpha1.PushSecretUpdatePolicyIfNotExists
	key := provider.PushRef{RemoteKey: "k"}
	prop := provider.PushRef{RemoteKey: "k", Property: "p"}
	tests := []struct {
		name   string
		policy esv1alpha1.PushSecretUpdatePolicy
		ref    provider.PushRef
		st     provider.RemoteState
		want   Action
		reason string
	}{
		{"Replace creates a missing remote", replace, key, provider.RemoteState{}, ActionPush, ""},
		{"Replace overwrites a remote keyferry created", replace, key, provider.RemoteState{Exists: true, Managed: true}, ActionPush, ""},
		{"Replace refuses a remote keyferry did not create", replace, key, provider.RemoteState{Exists: true}, ActionRefuse, ReasonRemoteNotManaged},
		{"Replace refuses a property of a remote keyferry did not create", replace, prop, provider.RemoteState{Exists: true}, ActionRefuse, ReasonRemoteNotManaged},
		{"IfNotExists creates a missing remote", ifNot, key, provider.RemoteState{}, ActionPush, ""},
		{"IfNotExists leaves an existing remote of keyferry", ifNot, key, provider.RemoteState{Exists: true, Managed: true}, ActionSkip, ""},
		{"IfNotExists leaves an existing remote of someone else", ifNot, key, provider.RemoteState{Exists: true}, ActionSkip, ""},
		{"IfNotExists adds a missing property to a remote of keyferry", ifNot, prop, provider.RemoteState{Exists: true, Managed: true}, ActionPush, ""},
		{"IfNotExists leaves an existing property", ifNot, prop, provider.RemoteState{Exists: true, Managed: true, PropertyExists: true}, ActionSkip, ""},
		{"IfNotExists refuses a missing property of a remote of someone else", ifNot, prop, provider.RemoteState{Exists: true}, ActionRefuse, ReasonRemoteNotManaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(tt.policy, tt.ref, tt.st)
			if d.Action != tt.want || d.Reason != tt.reason {
				t.Fatalf("decide = %+v, want %s %q", d, tt.want, tt.reason)
			}
			if d.Action != ActionPush && d.Message == "" {
				t.Fatal("a decision not to push has no message")
			}
		})
	}
}

func TestPushedBefore(t *testing.T) {
	p := Push{Store: engine.StoreRef{Kind: "SecretStore", Name: "s"}, Ref: provider.PushRef{RemoteKey: "k"}}
	recorded := esv1alpha1.SyncedPushSecretsMap{"SecretStore/s": {"k": esv1alpha1.PushSecretData{}}}
	for _, tt := range []struct {
		name  string
		state provider.RemoteState
		old   esv1alpha1.SyncedPushSecretsMap
		want  bool
	}{
		{"marked: keyferry's", provider.RemoteState{Exists: true, Managed: true}, nil, true},
		{"not marked: someone else's", provider.RemoteState{Exists: true}, recorded, false},
		{"no mark to carry, pushed before by this PushSecret", provider.RemoteState{Exists: true, Managed: true, Unmarked: true}, recorded, true},
		{"no mark to carry, never pushed: someone else's", provider.RemoteState{Exists: true, Managed: true, Unmarked: true}, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := pushedBefore(tt.state, tt.old, p); got != tt.want {
				t.Fatalf("pushedBefore = %v, want %v", got, tt.want)
			}
		})
	}
}
