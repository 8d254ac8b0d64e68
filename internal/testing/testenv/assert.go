package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// ReadyCondition returns an ExternalSecret's Ready condition, if any.
func ReadyCondition(es *esv1.ExternalSecret) *esv1.ExternalSecretStatusCondition {
	for i := range es.Status.Conditions {
		if es.Status.Conditions[i].Type == esv1.ExternalSecretReady {
			return &es.Status.Conditions[i]
		}
	}
	return nil
}

// WaitReady waits for an ExternalSecret's Ready condition to have the status
// and reason given, and returns the object.
func (e *Env) WaitReady(t testing.TB, ns, name string, status metav1.ConditionStatus, reason string) *esv1.ExternalSecret {
	t.Helper()
	es := &esv1.ExternalSecret{}
	Eventually(t, fmt.Sprintf("ExternalSecret %s/%s Ready=%s (%s)", ns, name, status, reason), func(ctx context.Context) (bool, string) {
		if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, es); err != nil {
			return false, err.Error()
		}
		c := ReadyCondition(es)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Status == status && c.Reason == reason, fmt.Sprintf("Ready=%s reason=%s message=%s", c.Status, c.Reason, c.Message)
	})
	return es
}

// WaitStoreReady waits for a SecretStore (ns != "") or ClusterSecretStore to
// report Ready=True.
func (e *Env) WaitStoreReady(t testing.TB, ns, name string) {
	t.Helper()
	Eventually(t, fmt.Sprintf("store %s/%s Ready", ns, name), func(ctx context.Context) (bool, string) {
		var conds []esv1.SecretStoreStatusCondition
		if ns == "" {
			var css esv1.ClusterSecretStore
			if err := e.Client.Get(ctx, client.ObjectKey{Name: name}, &css); err != nil {
				return false, err.Error()
			}
			conds = css.Status.Conditions
		} else {
			var ss esv1.SecretStore
			if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ss); err != nil {
				return false, err.Error()
			}
			conds = ss.Status.Conditions
		}
		for _, c := range conds {
			if c.Type == esv1.SecretStoreReady {
				return c.Status == metav1.ConditionTrue, fmt.Sprintf("Ready=%s reason=%s message=%s", c.Status, c.Reason, c.Message)
			}
		}
		return false, "no Ready condition"
	})
}

// WaitSecret waits until the Secret exists and check accepts it.
func (e *Env) WaitSecret(t testing.TB, ns, name string, check func(*corev1.Secret) (bool, string)) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	Eventually(t, fmt.Sprintf("Secret %s/%s", ns, name), func(ctx context.Context) (bool, string) {
		if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
			return false, err.Error()
		}
		return check(s)
	})
	return s
}

// HasData accepts a Secret holding at least the given keys and values. Its
// message names keys and sizes, never values.
func HasData(want map[string]string) func(*corev1.Secret) (bool, string) {
	return func(s *corev1.Secret) (bool, string) {
		for k, v := range want {
			if string(s.Data[k]) != v {
				return false, fmt.Sprintf("key %q is %d bytes, not the expected %d", k, len(s.Data[k]), len(v))
			}
		}
		return true, ""
	}
}

// GetSecret reads a Secret or fails the test.
func (e *Env) GetSecret(t testing.TB, ns, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := e.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		t.Fatalf("reading Secret %s/%s: %v", ns, name, err)
	}
	return s
}

// ForceSync sets ESO's force-sync annotation on an ExternalSecret.
func (e *Env) ForceSync(t testing.TB, ns, name string) {
	t.Helper()
	var es esv1.ExternalSecret
	if err := e.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &es); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(es.DeepCopy())
	if es.Annotations == nil {
		es.Annotations = map[string]string{}
	}
	es.Annotations[esv1.AnnotationForceSync] = time.Now().Format(time.RFC3339Nano)
	if err := e.Client.Patch(context.Background(), &es, patch); err != nil {
		t.Fatal(err)
	}
}
