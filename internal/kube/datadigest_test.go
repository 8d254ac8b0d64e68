package kube

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DataDigest tells apart maps that differ in any key or value, including
// those a plain concatenation would confuse, and ignores the order of the
// keys and the difference between nil and empty.
func TestDataDigestTellsValuesApart(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b map[string][]byte
		same bool
	}{
		{"nil and empty", nil, map[string][]byte{}, true},
		{"equal", map[string][]byte{"a": []byte("1"), "b": []byte("2")}, map[string][]byte{"b": []byte("2"), "a": []byte("1")}, true},
		{"value", map[string][]byte{"a": []byte("1")}, map[string][]byte{"a": []byte("2")}, false},
		{"key", map[string][]byte{"a": []byte("1")}, map[string][]byte{"b": []byte("1")}, false},
		{"key and value boundary", map[string][]byte{"ab": []byte("c")}, map[string][]byte{"a": []byte("bc")}, false},
		{"empty value and no key", map[string][]byte{"a": {}}, nil, false},
		{"an extra key", map[string][]byte{"a": []byte("1")}, map[string][]byte{"a": []byte("1"), "b": nil}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DataDigest(tc.a) == DataDigest(tc.b); got != tc.same {
				t.Errorf("same digest = %v, want %v", got, tc.same)
			}
		})
	}
}

// DigestSecretData leaves no value in the Secret, keeps everything else,
// and is idempotent; CachedDataDigest finds the digest only on a digested
// Secret.
func TestDigestSecretDataKeepsNoValue(t *testing.T) {
	const canary = "canary-7f3a9"
	data := map[string][]byte{"password": []byte(canary)}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "n", ResourceVersion: "7", Labels: map[string]string{"l": "v"}},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
	if _, ok := CachedDataDigest(s); ok {
		t.Fatal("CachedDataDigest found a digest on a Secret with values")
	}
	DigestSecretData(s)
	DigestSecretData(s)
	if d, ok := CachedDataDigest(s); !ok || d != DataDigest(data) {
		t.Fatalf("CachedDataDigest = %q, %v; want the digest of the values", d, ok)
	}
	if s.Data != nil || s.Name != "s" || s.ResourceVersion != "7" || s.Labels["l"] != "v" || s.Type != corev1.SecretTypeOpaque {
		t.Errorf("digested Secret: %+v", s)
	}
	if dump := fmt.Sprintf("%#v", s); strings.Contains(dump, canary) {
		t.Errorf("the digested Secret still holds the value: %s", dump)
	}
}

// SameData compares values whether each side holds them or, as the cache
// does, their digest.
func TestSameDataWithEitherSideDigested(t *testing.T) {
	secret := func(v string, digested bool) *corev1.Secret {
		s := &corev1.Secret{Data: map[string][]byte{"k": []byte(v)}}
		if digested {
			DigestSecretData(s)
		}
		return s
	}
	for _, tc := range []struct {
		name string
		a, b *corev1.Secret
		same bool
	}{
		{"values, equal", secret("v1", false), secret("v1", false), true},
		{"values, different", secret("v1", false), secret("v2", false), false},
		{"digest and values, equal", secret("v1", true), secret("v1", false), true},
		{"values and digest, different", secret("v1", false), secret("v2", true), false},
		{"digests, equal", secret("v1", true), secret("v1", true), true},
		{"digests, different", secret("v1", true), secret("v2", true), false},
		{"no key and the digest of an empty value", &corev1.Secret{}, secret("", true), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SameData(tc.a, tc.b); got != tc.same {
				t.Errorf("SameData = %v, want %v", got, tc.same)
			}
		})
	}
}
