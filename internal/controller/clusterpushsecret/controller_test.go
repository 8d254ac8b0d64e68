package clusterpushsecret

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
)

func TestSetReadyKeepsTheTransitionTimeWhileTheStatusHolds(t *testing.T) {
	then := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := then.Add(time.Hour)
	r := &Reconciler{Now: func() time.Time { return now }}
	unsupported := esv1alpha1.ClusterPushSecretStatus{Conditions: []esv1alpha1.PushSecretStatusCondition{
		{Type: esv1alpha1.PushSecretReady, Status: corev1.ConditionFalse, Reason: "Unsupported", LastTransitionTime: esv1.NewTime(then)},
	}}
	tests := []struct {
		name   string
		prev   esv1alpha1.ClusterPushSecretStatus
		status corev1.ConditionStatus
		want   time.Time
	}{
		{"first condition", esv1alpha1.ClusterPushSecretStatus{}, corev1.ConditionTrue, now},
		{"same status, other reason: the time stays", unsupported, corev1.ConditionFalse, then},
		{"the status changes: now", unsupported, corev1.ConditionTrue, now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.prev.DeepCopy()
			r.setReady(st, &tt.prev, tt.status, ReasonSynced, "m")
			if len(st.Conditions) != 1 {
				t.Fatalf("conditions %+v; want Ready only (an Unsupported one replaced)", st.Conditions)
			}
			c := st.Conditions[0]
			if c.Status != tt.status || c.Reason != ReasonSynced || !c.LastTransitionTime.Time.Time.Equal(tt.want) {
				t.Fatalf("condition %+v; want %s at %s", c, tt.status, tt.want)
			}
		})
	}
}
