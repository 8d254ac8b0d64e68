package eventbudget

import (
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

type recorded struct {
	mu    sync.Mutex
	types []string
}

func (r *recorded) Eventf(_, _ runtime.Object, eventtype, _, _, _ string, _ ...any) {
	r.mu.Lock()
	r.types = append(r.types, eventtype)
	r.mu.Unlock()
}

func count(types []string, want string) int {
	n := 0
	for _, t := range types {
		if t == want {
			n++
		}
	}
	return n
}

func TestNormalEventsAreBoundedAndWarningsNeverAre(t *testing.T) {
	next := &recorded{}
	suppressed := 0
	// No refill during the test: the burst is the whole budget.
	r := New(next, 0.0001, 5, func() { suppressed++ })
	obj := &corev1.Secret{}
	for range 20 {
		r.Eventf(obj, nil, corev1.EventTypeNormal, "Created", "Sync", "created")
		r.Eventf(obj, nil, corev1.EventTypeWarning, "SecretSyncError", "Sync", "failed")
	}
	if n := count(next.types, corev1.EventTypeNormal); n != 5 {
		t.Errorf("%d Normal Events emitted, want the burst of 5", n)
	}
	if n := count(next.types, corev1.EventTypeWarning); n != 20 {
		t.Errorf("%d Warning Events emitted, want all 20", n)
	}
	if suppressed != 15 {
		t.Errorf("%d suppressions counted, want 15", suppressed)
	}
}

func TestNegativeRateMeansNoBudget(t *testing.T) {
	next := &recorded{}
	r := New(next, -1, 0, nil)
	for range 1000 {
		r.Eventf(&corev1.Secret{}, nil, corev1.EventTypeNormal, "Created", "Sync", "created")
	}
	if n := len(next.types); n != 1000 {
		t.Errorf("%d Events emitted, want 1000", n)
	}
}
