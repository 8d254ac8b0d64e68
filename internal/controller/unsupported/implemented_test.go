package unsupported

import (
	"testing"
)

func TestClearUnsupported(t *testing.T) {
	tests := []struct {
		name, doc string
		changed   bool
		// left is how many conditions remain.
		left int
	}{
		{"no status", "kind: Password", false, 0},
		{"a status that is not an object", "kind: Password\nstatus: 3", false, 0},
		{"conditions that are not a list", "kind: Password\nstatus: {conditions: x}", false, 0},
		{"no Ready condition", "kind: Password\nstatus: {conditions: [{type: Other, status: 'True', reason: Unsupported}]}", false, 1},
		{"Ready for another reason is kept", "kind: Password\nstatus: {conditions: [{type: Ready, status: 'True', reason: Valid}]}", false, 1},
		{"Ready Unsupported is removed", "kind: Password\nstatus: {conditions: [{type: Ready, status: 'False', reason: Unsupported, message: m}]}", true, 0},
		{"the other conditions stay", "kind: Password\nstatus: {conditions: [{type: A, status: 'True'}, {type: Ready, status: 'False', reason: Unsupported}, {type: B, status: 'False'}]}", true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := object(t, tt.doc)
			if got := clearUnsupported(obj); got != tt.changed {
				t.Fatalf("clearUnsupported = %v; want %v", got, tt.changed)
			}
			status, _ := obj.Object["status"].(map[string]any)
			conds, _ := status["conditions"].([]any)
			if len(conds) != tt.left {
				t.Fatalf("%d conditions left; want %d", len(conds), tt.left)
			}
			for _, c := range conds {
				if m := c.(map[string]any); m["type"] == ConditionReady && m["reason"] == ReasonUnsupported {
					t.Fatal("the Unsupported condition is still there")
				}
			}
		})
	}
}

func TestImplementedGenerator(t *testing.T) {
	tests := []struct {
		name, doc string
		want      bool
	}{
		{"ClusterGenerator of Password", "kind: ClusterGenerator\nspec: {kind: Password, generator: {passwordSpec: {length: 12}}}", true},
		{"ClusterGenerator of UUID", "kind: ClusterGenerator\nspec: {kind: UUID, generator: {uuidSpec: {}}}", true},
		{"ClusterGenerator of Fake", "kind: ClusterGenerator\nspec: {kind: Fake, generator: {fakeSpec: {}}}", true},
		{"ClusterGenerator of SSHKey", "kind: ClusterGenerator\nspec: {kind: SSHKey, generator: {sshKeySpec: {}}}", true},
		{"ClusterGenerator of Webhook", "kind: ClusterGenerator\nspec: {kind: Webhook, generator: {webhookSpec: {}}}", true},
		{"ClusterGenerator of ACRAccessToken", "kind: ClusterGenerator\nspec: {kind: ACRAccessToken, generator: {acrAccessTokenSpec: {registry: example.azurecr.io}}}", true},
		{"ClusterGenerator of GithubAccessToken", "kind: ClusterGenerator\nspec: {kind: GithubAccessToken, generator: {githubAccessTokenSpec: {}}}", false},
		{"ClusterGenerator without a kind", "kind: ClusterGenerator\nspec: {}", false},
		{"a kind that is not a string", "kind: ClusterGenerator\nspec: {kind: 3}", false},
		{"not a ClusterGenerator", "kind: SSHKey\nspec: {kind: Password}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := implementedGenerator(object(t, tt.doc)); got != tt.want {
				t.Fatalf("implementedGenerator = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestImplementedKindsAreNotReportedUnsupported(t *testing.T) {
	unsupported := map[string]bool{}
	for _, k := range Kinds() {
		unsupported[k.GroupVersionKind.String()] = true
		if k.Implemented {
			t.Errorf("%s is in Kinds() and marked Implemented", k.Kind)
		}
	}
	for _, k := range Implemented() {
		if unsupported[k.GroupVersionKind.String()] {
			t.Errorf("%s is both implemented and unsupported", k.Kind)
		}
		if !k.Implemented {
			t.Errorf("%s is not marked Implemented", k.Kind)
		}
	}
}

// ClusterPushSecret has its own controller (internal/controller/
// clusterpushsecret), so it is neither reported Unsupported nor cleared here.
func TestClusterPushSecretIsNotUnsupported(t *testing.T) {
	for _, k := range append(Kinds(), Implemented()...) {
		if k.Kind == "ClusterPushSecret" {
			t.Fatalf("ClusterPushSecret is in the unsupported kinds: %+v", k)
		}
	}
}

// ACRAccessToken runs through the azurekv provider (docs/generators.md): it
// is implemented, no longer reported Unsupported.
func TestACRAccessTokenIsImplemented(t *testing.T) {
	for _, k := range Kinds() {
		if k.Kind == "ACRAccessToken" {
			t.Fatal("ACRAccessToken is still in the unsupported kinds")
		}
	}
	for _, k := range Implemented() {
		if k.Kind == "ACRAccessToken" && k.Implemented && k.Namespaced {
			return
		}
	}
	t.Fatal("ACRAccessToken is not an implemented namespaced kind")
}
