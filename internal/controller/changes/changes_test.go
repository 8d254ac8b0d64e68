package changes

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestQueueHoldsNotificationsUntilRead(t *testing.T) {
	var q Queue // the zero value, before any controller reads it
	q.Send(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}})
	select {
	case e := <-q.events():
		if e.Object.GetNamespace() != "ns" || e.Object.GetName() != "a" {
			t.Fatalf("got %s/%s", e.Object.GetNamespace(), e.Object.GetName())
		}
	default:
		t.Fatal("the notification was not queued")
	}
}

func TestQueueSendGivesUpWhenDone(t *testing.T) {
	var q Queue
	for range Buffer {
		q.Send(context.Background(), &corev1.Secret{})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() {
		q.Send(ctx, &corev1.Secret{}) // the queue is full: waits for ctx
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Send on a full queue did not return when its context ended")
	}
}
