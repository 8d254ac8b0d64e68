// Package writepolicy tests the write decision against the real API server
// (and kube-controller-manager): what keyferry refuses to write, Merge into
// Secrets others own, Secrets ESO left behind, and refusals that wait for a
// person instead of retrying.
package writepolicy

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{ControllerManager: true}, &env))
}

var storeSeq atomic.Int64

// fakeStore returns a SecretStore manifest with the fake provider's data;
// each call's configuration is unique so tests share no client.
func fakeStore(name string, kv ...string) string {
	kv = append(kv, "_store", fmt.Sprint(storeSeq.Add(1)))
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata:\n  name: %s\nspec:\n  provider:\n    fake:\n      data:\n", name)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "        - key: %q\n          value: %q\n", kv[i], kv[i+1])
	}
	return b.String()
}

func create(t *testing.T, obj client.Object, opts ...client.CreateOption) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj, opts...); err != nil {
		t.Fatalf("creating %s: %v", obj.GetName(), err)
	}
}

// assertNoCredentialSecret fails when any Secret in ns is a ServiceAccount
// token or carries the ServiceAccount annotations.
func assertNoCredentialSecret(t *testing.T, ns string) {
	t.Helper()
	var list corev1.SecretList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		_, named := s.Annotations[corev1.ServiceAccountNameKey]
		if s.Type == corev1.SecretTypeServiceAccountToken || named {
			t.Fatalf("Secret %s was written: type %s, annotations %v", s.Name, s.Type, s.Annotations)
		}
	}
}

// assertWarningEvent fails unless a Warning Event with reason is about the
// ExternalSecret name.
func assertWarningEvent(t *testing.T, ns, name, reason string) {
	t.Helper()
	testenv.Eventually(t, "a "+reason+" Event", func(ctx context.Context) (bool, string) {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs {
			if ev.Type == corev1.EventTypeWarning && ev.Reason == reason {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(evs))
	})
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
