package test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// TestAMassFirstSyncWritesEachObjectOnce: when many ExternalSecrets sync
// at once (their statuses written behind their Secrets), each Secret is
// created once and never updated, and each ExternalSecret's status is
// written once: no object is written twice in one sync.
func TestAMassFirstSyncWritesEachObjectOnce(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: fake}
spec:
  provider:
    fake:
      data: [{key: a, value: "1"}, {key: b, value: "2"}]
`)
	env.WaitStoreReady(t, ns, "fake")

	wc, err := client.NewWithWatch(env.Cluster.Config, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var (
		mu      sync.Mutex
		writes  = map[string]int{} // "Secret/<name>" or "ExternalSecret/<name>" → writes after creation
		created = map[string]int{}
	)
	count := func(kind string, w watch.Interface) {
		for ev := range w.ResultChan() {
			o, ok := ev.Object.(client.Object)
			if !ok {
				continue
			}
			mu.Lock()
			switch ev.Type {
			case watch.Added:
				created[kind+"/"+o.GetName()]++
			case watch.Modified:
				writes[kind+"/"+o.GetName()]++
			}
			mu.Unlock()
		}
	}
	for kind, list := range map[string]client.ObjectList{"Secret": &corev1.SecretList{}, "ExternalSecret": &esv1.ExternalSecretList{}} {
		w, err := wc.Watch(ctx, list, client.InNamespace(ns))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		go count(kind, w)
	}

	const n = 40
	for i := range n {
		env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: es-%d}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: fake}
  data: [{secretKey: a, remoteRef: {key: a}}, {secretKey: b, remoteRef: {key: b}}]
`, i))
	}
	for i := range n {
		env.WaitReady(t, ns, fmt.Sprintf("es-%d", i), metav1.ConditionTrue, "SecretSynced")
	}
	// Every status write has reached the watch once the last one has: the
	// watch delivers in order, and the writes of each object are seen
	// before its Ready status is.
	testenv.Eventually(t, "the watch has seen every object's status", func(context.Context) (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		seen := 0
		for i := range n {
			if writes[fmt.Sprintf("ExternalSecret/es-%d", i)] > 0 && created[fmt.Sprintf("Secret/es-%d", i)] > 0 {
				seen++
			}
		}
		return seen == n, fmt.Sprintf("%d of %d objects seen created and their status written", seen, n)
	})
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		es, secret := fmt.Sprintf("ExternalSecret/es-%d", i), fmt.Sprintf("Secret/es-%d", i)
		if created[secret] != 1 || writes[secret] != 0 {
			t.Errorf("%s: created %d times and updated %d times; want created once, never updated", secret, created[secret], writes[secret])
		}
		if writes[es] != 1 {
			t.Errorf("%s: %d writes after its creation; want one status write", es, writes[es])
		}
	}
}
