// Package changes carries change notifications to the controller that
// receives them. When a value changes in a store, the fetch layer reports the
// subscribers that read it (engine.ObjectRef strings); the operator parses
// each and calls the Notify method of the controller for its kind, which puts
// the object on its own Queue; the controller watches that Queue as a source
// and reconciles the object at once.
package changes

import (
	"context"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// Buffer is how many notifications a Queue holds before Send waits for the
// controller to take some.
const Buffer = 1024

// Queue holds one controller's pending change notifications. The zero value
// is ready to use, so notifications may arrive before the controller is set
// up; a Queue must not be copied after first use.
type Queue struct {
	once sync.Once
	ch   chan event.GenericEvent
}

func (q *Queue) events() chan event.GenericEvent {
	q.once.Do(func() { q.ch = make(chan event.GenericEvent, Buffer) })
	return q.ch
}

// Send queues a reconcile of obj (only its namespace and name are read). It
// waits while the queue is full, until ctx is done.
func (q *Queue) Send(ctx context.Context, obj client.Object) {
	select {
	case q.events() <- event.GenericEvent{Object: obj}:
	case <-ctx.Done():
	}
}

// Source is the watch a controller adds to receive the queued objects
// through h.
func (q *Queue) Source(h handler.EventHandler) source.Source {
	return source.Channel(q.events(), h)
}
