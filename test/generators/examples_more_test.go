package generators

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
)

// The examples of ESO's Password and SSHKey generator pages
// (generator-password-multiple-keys.yaml,
// generator-password-encoding-examples.yaml, generator-sshkey-ecdsa.yaml,
// generator-sshkey-rsa-example.yaml), applied unchanged. The encoding and
// ECDSA examples define generators only: the test adds an ExternalSecret
// for each.
func TestESOPasswordAndSSHKeyPageExamples(t *testing.T) {
	ns := env.Namespace(t)
	p := start(t, ns)
	for _, f := range []string{"password-multiple-keys", "password-encodings", "sshkey", "sshkey-ecdsa", "sshkey-rsa-example"} {
		env.Apply(t, ns, "examples/generators/"+f+".yaml")
	}
	t.Cleanup(func() {
		_ = env.Client.DeleteAllOf(context.Background(), &esv1.ExternalSecret{}, client.InNamespace(ns))
	})
	uses := func(name, kind, generator string) string {
		return fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: %[1]s
spec:
  target: {name: %[1]s}
  dataFrom:
  - sourceRef:
      generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: %[2]s, name: %[3]s}
`, name, kind, generator)
	}
	for _, g := range []string{"password-hex", "password-base32", "password-raw", "password-base64url"} {
		env.Apply(t, ns, uses(g, "Password", g))
	}
	env.Apply(t, ns, uses("ecdsa", "SSHKey", "example-ecdsa-key"))

	var secrets []string
	t.Run("secretKeys: one password per key", func(t *testing.T) {
		env.WaitReady(t, ns, "auth-secrets", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
		s := env.GetSecret(t, ns, "auth-secrets")
		if got := strings.Join(slices.Sorted(maps.Keys(s.Data)), ","); got != "key1,key2" {
			t.Fatalf("keys %s, want key1,key2", got)
		}
		k1, k2 := string(s.Data["key1"]), string(s.Data["key2"])
		if len(k1) != 36 || len(k2) != 36 || k1 == k2 {
			t.Fatalf("passwords of %d and %d characters, equal %v; want two distinct of 36", len(k1), len(k2), k1 == k2)
		}
		secrets = append(secrets, k1, k2)
	})

	t.Run("encodings", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			length int
			decode func(string) ([]byte, error)
		}{
			{"password-hex", 16, hex.DecodeString},
			{"password-base32", 20, base32.StdEncoding.DecodeString},
			{"password-raw", 12, func(s string) ([]byte, error) { return []byte(s), nil }},
			{"password-base64url", 24, base64.URLEncoding.DecodeString},
		} {
			env.WaitReady(t, ns, tt.name, metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
			v := secretValue(t, ns, tt.name, "password")
			raw, err := tt.decode(v)
			if err != nil || len(raw) != tt.length {
				t.Fatalf("%s: %d bytes once decoded (%v); want the generator's length %d", tt.name, len(raw), err, tt.length)
			}
			secrets = append(secrets, v)
		}
	})

	t.Run("ecdsa P-521 and the RSA example", func(t *testing.T) {
		for _, tt := range []struct {
			es, secret, comment string
			check               func(any) bool
		}{
			{"ecdsa", "ecdsa", "ecdsa@example.com", func(k any) bool {
				e, ok := k.(*ecdsa.PrivateKey)
				return ok && e.Curve == elliptic.P521()
			}},
			{"example-rsa-key", "ssh-rsa-secret", "rsa@example.com", func(k any) bool {
				r, ok := k.(*rsa.PrivateKey)
				return ok && r.N.BitLen() == 4096
			}},
		} {
			env.WaitReady(t, ns, tt.es, metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
			priv := secretValue(t, ns, tt.secret, "privateKey")
			key, err := ssh.ParseRawPrivateKey([]byte(priv))
			if err != nil || !tt.check(key) {
				t.Fatalf("%s: the private key is not of the generator's type and size (%v)", tt.es, err)
			}
			if _, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(secretValue(t, ns, tt.secret, "publicKey"))); err != nil || comment != tt.comment {
				t.Fatalf("%s: public key comment %q (%v), want %q", tt.es, comment, err, tt.comment)
			}
			secrets = append(secrets, priv)
		}
	})
	for _, v := range secrets {
		assertNoLeak(t, ns, v, p)
	}
}
