package fanout

import (
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func TestParallelKeepsOrderAndLimit(t *testing.T) {
	var running, most atomic.Int32
	out := Parallel(20, 3, func(i int) int {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		defer running.Add(-1)
		return i * i
	})
	for i, v := range out {
		if v != i*i {
			t.Fatalf("out[%d] = %d, want %d", i, v, i*i)
		}
	}
	if m := most.Load(); m > 3 {
		t.Fatalf("%d ran at once, want at most 3", m)
	}
	if got := Parallel(2, 0, func(i int) int { return i }); len(got) != 2 {
		t.Fatalf("a limit of 0 ran %d", len(got))
	}
}

func TestControllerName(t *testing.T) {
	obj := func(apiVersion, kind string, controller bool) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{
			APIVersion: apiVersion, Kind: kind, Name: "parent", Controller: ptr.To(controller)}}}}
	}
	for _, tt := range []struct {
		name string
		o    *corev1.Secret
		ok   bool
	}{
		{"controlled by the kind", obj("external-secrets.io/v1", "ClusterExternalSecret", true), true},
		{"another version of the group", obj("external-secrets.io/v1beta1", "ClusterExternalSecret", true), true},
		{"owned, not controlled", obj("external-secrets.io/v1", "ClusterExternalSecret", false), false},
		{"another group", obj("example.com/v1", "ClusterExternalSecret", true), false},
		{"a group that only starts the same", obj("external-secrets.io.evil/v1", "ClusterExternalSecret", true), false},
		{"another kind", obj("external-secrets.io/v1", "ClusterPushSecret", true), false},
		{"no owner", &corev1.Secret{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name, ok := ControllerName(tt.o, "external-secrets.io", "ClusterExternalSecret")
			if ok != tt.ok || (ok && name != "parent") {
				t.Fatalf("ControllerName = %q, %v; want ok=%v", name, ok, tt.ok)
			}
		})
	}
}

func TestPredicates(t *testing.T) {
	base := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", Generation: 1, Labels: map[string]string{"x": "1"}}}
	with := func(mut func(*corev1.Namespace)) *corev1.Namespace {
		n := base.DeepCopy()
		mut(n)
		return n
	}
	now := metav1.NewTime(time.Unix(1, 0))
	for _, tt := range []struct {
		name             string
		next             *corev1.Namespace
		namespace, child bool
	}{
		{"nothing", with(func(*corev1.Namespace) {}), false, false},
		{"labels", with(func(n *corev1.Namespace) { n.Labels = map[string]string{"x": "2"} }), true, true},
		{"deletion starts", with(func(n *corev1.Namespace) { n.DeletionTimestamp = &now }), true, true},
		{"spec (generation)", with(func(n *corev1.Namespace) { n.Generation = 2 }), false, true},
		{"annotations", with(func(n *corev1.Namespace) { n.Annotations = map[string]string{"a": "b"} }), false, true},
		{"owner references", with(func(n *corev1.Namespace) { n.OwnerReferences = []metav1.OwnerReference{{Name: "o"}} }), false, true},
		{"status only", with(func(n *corev1.Namespace) { n.Status.Phase = corev1.NamespaceTerminating }), false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := event.UpdateEvent{ObjectOld: base, ObjectNew: tt.next}
			if got := NamespaceChanged().Update(e); got != tt.namespace {
				t.Errorf("NamespaceChanged = %v, want %v", got, tt.namespace)
			}
			if got := ChildChanged().Update(e); got != tt.child {
				t.Errorf("ChildChanged = %v, want %v", got, tt.child)
			}
		})
	}
}
