package pushsecret

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
)

func TestControlledByThePushSecret(t *testing.T) {
	ps := &esv1alpha1.PushSecret{ObjectMeta: metav1.ObjectMeta{Name: "gen", Namespace: "ns", UID: types.UID("ps-uid")}}
	ref := func(kind string, uid types.UID, controller bool) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: esv1alpha1.GroupVersion.String(), Kind: kind, Name: "gen", UID: uid, Controller: ptr.To(controller)}}
	}
	tests := []struct {
		name   string
		owners []metav1.OwnerReference
		ours   bool
	}{
		{"controlled by this PushSecret", ref(Kind, "ps-uid", true), true},
		{"no owner: a Secret someone else created", nil, false},
		{"an earlier PushSecret of the same name", ref(Kind, "old-uid", true), false},
		{"owned but not controlled", ref(Kind, "ps-uid", false), false},
		{"controlled by another kind with the same UID", ref("ExternalSecret", "ps-uid", true), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gen", Namespace: "ns", OwnerReferences: tt.owners}}
			err := localCopyIsOurs(ps, s)
			if tt.ours {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			ee, ok := err.(*engine.Error)
			if !ok || ee.Reason != engine.ReasonSecretNotOwned || !strings.Contains(ee.Error(), `Secret "gen" exists`) {
				t.Fatalf("err = %v; want SecretNotOwned naming the Secret", err)
			}
		})
	}
}

func TestGenerationOf(t *testing.T) {
	ps := &esv1alpha1.PushSecret{ObjectMeta: metav1.ObjectMeta{Generation: 3, Annotations: map[string]string{"force-sync": "t1"}}}
	for _, tt := range []struct {
		name   string
		spec   Spec
		expect engine.Generation
	}{
		{"Replace rotates every refresh interval", Spec{Refresh: time.Hour, UpdatePolicy: esv1alpha1.PushSecretUpdatePolicyReplace},
			engine.Generation{Generation: 3, ForceSync: "t1", Interval: time.Hour}},
		{"refreshInterval 0 generates once", Spec{UpdatePolicy: esv1alpha1.PushSecretUpdatePolicyReplace},
			engine.Generation{Generation: 3, ForceSync: "t1"}},
		{"IfNotExists generates once (ESO: never rotated)", Spec{Refresh: time.Hour, UpdatePolicy: esv1alpha1.PushSecretUpdatePolicyIfNotExists},
			engine.Generation{Generation: 3, ForceSync: "t1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := generationOf(ps, tt.spec); got != tt.expect {
				t.Fatalf("generationOf = %+v; want %+v", got, tt.expect)
			}
		})
	}
}

// The local copy keeps what was there but its data and record, and a new
// one is controlled by the PushSecret.
func TestLocalCopy(t *testing.T) {
	ps := &esv1alpha1.PushSecret{ObjectMeta: metav1.ObjectMeta{Name: "gen", Namespace: "ns", UID: "u"}}
	rec := engine.GeneratedRecord{Generation: 1, At: time.Unix(10, 0).UTC(), Keys: [][]string{{"password"}}}
	fresh := localCopy(ps, nil, false, map[string][]byte{"password": []byte("x")}, rec)
	if c := metav1.GetControllerOf(fresh); c == nil || c.UID != "u" || c.Kind != Kind {
		t.Fatalf("controller = %v; want the PushSecret", c)
	}
	if fresh.Annotations[engine.AnnotationGenerated] != rec.String() || fresh.Type != corev1.SecretTypeOpaque {
		t.Fatalf("annotations %v, type %s", fresh.Annotations, fresh.Type)
	}
	cur := fresh.DeepCopy()
	cur.Labels = map[string]string{"team": "a"}
	cur.Data["extra"] = []byte("y")
	next := localCopy(ps, cur, true, map[string][]byte{"password": []byte("z")}, rec)
	if next.Labels["team"] != "a" || len(next.Data) != 1 || string(next.Data["password"]) != "z" {
		t.Fatalf("labels %v, data keys %d; want the labels kept and only the generated data", next.Labels, len(next.Data))
	}
	if cur.Data["password"] == nil || string(cur.Data["password"]) != "x" {
		t.Fatal("localCopy changed the Secret it was given")
	}
}
