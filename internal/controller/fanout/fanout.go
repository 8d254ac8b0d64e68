// Package fanout holds what the controllers that copy one object into many
// namespaces share (the ClusterExternalSecret and ClusterPushSecret
// controllers): bounded parallel writes, the watch predicates of
// namespaces and of the objects they create, and the lookup of the
// controlling object.
package fanout

import (
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Parallel runs fn for 0..n-1, at most limit (at least 1) at once, and
// returns the results in order.
func Parallel[T any](n, limit int, fn func(i int) T) []T {
	out := make([]T, n)
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = fn(i)
		}()
	}
	wg.Wait()
	return out
}

// ControllerName returns the name of the object of kind, in API group
// group, that controls o.
func ControllerName(o client.Object, group, kind string) (string, bool) {
	ref := metav1.GetControllerOf(o)
	if ref == nil || ref.Kind != kind || !strings.HasPrefix(ref.APIVersion, group+"/") {
		return "", false
	}
	return ref.Name, true
}

// NamespaceChanged passes namespace creations, deletions, label changes
// and the start of a deletion: what may make a namespace start or stop
// being selected.
func NamespaceChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return !equality.Semantic.DeepEqual(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()) ||
				deletionStarted(e)
		},
	}
}

// ChildChanged passes every change to a created object that its creator
// may have to undo (spec, labels, annotations, owner references) and the
// start of its deletion; status writes by the object's own controller are
// ignored.
func ChildChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld, e.ObjectNew
			return o.GetGeneration() != n.GetGeneration() ||
				!equality.Semantic.DeepEqual(o.GetLabels(), n.GetLabels()) ||
				!equality.Semantic.DeepEqual(o.GetAnnotations(), n.GetAnnotations()) ||
				!equality.Semantic.DeepEqual(o.GetOwnerReferences(), n.GetOwnerReferences()) ||
				deletionStarted(e)
		},
	}
}

func deletionStarted(e event.UpdateEvent) bool {
	return e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
}
