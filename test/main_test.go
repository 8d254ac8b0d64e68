// Package test holds keyferry's integration tests: each runs the real
// kube-apiserver and etcd (and kube-controller-manager for garbage
// collection), the operator in-process, and applies manifests, many straight
// from examples/, then asserts what a user would see.
package test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{ControllerManager: true}, &env))
}

// assertEventsClean fails when a canary value appears in the Events about
// an object or in its status.
func assertNoLeakInObject(t *testing.T, ns, name, canary string) {
	t.Helper()
	evs, err := env.Events(context.Background(), ns, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if strings.Contains(ev.Note, canary) || strings.Contains(ev.Reason, canary) {
			t.Fatalf("secret value appeared in Event %s: %s", ev.Reason, ev.Note)
		}
	}
	es := &esv1.ExternalSecret{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, es); err == nil {
		for _, c := range es.Status.Conditions {
			if strings.Contains(c.Message, canary) {
				t.Fatalf("secret value appeared in status: %s", c.Message)
			}
		}
	}
}

var storeSeq atomic.Int64

// fakeStore returns a SecretStore manifest with the fake provider's data.
// Each call's configuration is unique (an extra "_store" entry), so tests do
// not share a client and its call count; sharedFakeStore does not add it.
func fakeStore(name string, kv ...string) string {
	return sharedFakeStore(name, append(kv, "_store", fmt.Sprint(storeSeq.Add(1)))...)
}

// sharedFakeStore returns a SecretStore manifest with exactly the given data.
func sharedFakeStore(name string, kv ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata:\n  name: %s\nspec:\n  provider:\n    fake:\n      data:\n", name)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "        - key: %q\n          value: %q\n", kv[i], kv[i+1])
	}
	return b.String()
}
