package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/operator"
)

// tracker mirrors the managed Secrets through a watch, so the benchmark can
// tell when they are right without loading the API server with Lists.
type tracker struct {
	mu      sync.Mutex
	data    map[string]map[string][]byte
	changed chan struct{}
	first   time.Time // when the first Secret was added since resetFirst
}

// resetFirst forgets the first Secret seen so far.
func (tr *tracker) resetFirst() {
	tr.mu.Lock()
	tr.first = time.Time{}
	tr.mu.Unlock()
}

// firstSince is how long after start the first Secret was added.
func (tr *tracker) firstSince(start time.Time) float64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.first.Sub(start).Seconds()
}

func track(ctx context.Context, cfg *rest.Config) (*tracker, error) {
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: operator.NewScheme()})
	if err != nil {
		return nil, err
	}
	tr := &tracker{data: map[string]map[string][]byte{}, changed: make(chan struct{}, 1)}
	go tr.run(ctx, wc)
	return tr, nil
}

func (tr *tracker) run(ctx context.Context, wc client.WithWatch) {
	for ctx.Err() == nil {
		var list corev1.SecretList
		if err := wc.List(ctx, &list, client.HasLabels{managedLabel}); err != nil {
			time.Sleep(time.Second) // retry pacing after an API error
			continue
		}
		tr.mu.Lock()
		tr.data = map[string]map[string][]byte{}
		for _, s := range list.Items {
			tr.data[s.Namespace+"/"+s.Name] = s.Data
		}
		tr.mu.Unlock()
		tr.notify()
		w, err := wc.Watch(ctx, &corev1.SecretList{}, client.HasLabels{managedLabel}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			continue
		}
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*corev1.Secret)
			if !ok {
				continue
			}
			tr.mu.Lock()
			if ev.Type == watch.Deleted {
				delete(tr.data, s.Namespace+"/"+s.Name)
			} else {
				if ev.Type == watch.Added && tr.first.IsZero() {
					tr.first = time.Now()
				}
				tr.data[s.Namespace+"/"+s.Name] = s.Data
			}
			tr.mu.Unlock()
			tr.notify()
		}
	}
}

func (tr *tracker) notify() {
	select {
	case tr.changed <- struct{}{}:
	default:
	}
}

// wait returns once check accepts the tracked Secrets, or fails after
// timeout with check's last message.
func (tr *tracker) wait(ctx context.Context, timeout time.Duration, check func(map[string]map[string][]byte) (bool, string)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		tr.mu.Lock()
		ok, msg := check(tr.data)
		tr.mu.Unlock()
		if ok {
			return nil
		}
		last = msg
		select {
		case <-tr.changed:
		case <-ctx.Done():
			return fmt.Errorf("%s after %s", last, timeout)
		}
	}
}
