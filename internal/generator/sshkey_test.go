package generator

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
)

func intp(v int) *int { return &v }

func TestSSHKeyMakesAWorkingPair(t *testing.T) {
	tests := []struct {
		name    string
		spec    genv1alpha1.SSHKeySpec
		keyType string
		check   func(t *testing.T, raw any)
	}{
		{"default is rsa 2048", genv1alpha1.SSHKeySpec{}, ssh.KeyAlgoRSA, func(t *testing.T, raw any) {
			if k, ok := raw.(*rsa.PrivateKey); !ok || k.N.BitLen() != 2048 {
				t.Fatalf("want a 2048-bit rsa key, got %T", raw)
			}
		}},
		{"rsa 4096 (ESO's example)", genv1alpha1.SSHKeySpec{KeyType: "rsa", KeySize: intp(4096), Comment: "rsa@example.com"}, ssh.KeyAlgoRSA, func(t *testing.T, raw any) {
			if k, ok := raw.(*rsa.PrivateKey); !ok || k.N.BitLen() != 4096 {
				t.Fatalf("want a 4096-bit rsa key, got %T", raw)
			}
		}},
		{"ed25519 ignores keySize (ESO's example)", genv1alpha1.SSHKeySpec{KeyType: "ed25519", KeySize: intp(4096), Comment: "user@example.com"}, ssh.KeyAlgoED25519, func(t *testing.T, raw any) {
			if _, ok := raw.(*ed25519.PrivateKey); !ok {
				t.Fatalf("want an ed25519 key, got %T", raw)
			}
		}},
		{"ecdsa default 256", genv1alpha1.SSHKeySpec{KeyType: "ecdsa"}, ssh.KeyAlgoECDSA256, func(t *testing.T, raw any) {
			if k, ok := raw.(*ecdsa.PrivateKey); !ok || k.Curve.Params().BitSize != 256 {
				t.Fatalf("want a P-256 key, got %T", raw)
			}
		}},
		{"ecdsa 521", genv1alpha1.SSHKeySpec{KeyType: "ecdsa", KeySize: intp(521)}, ssh.KeyAlgoECDSA521, func(t *testing.T, raw any) {
			if k, ok := raw.(*ecdsa.PrivateKey); !ok || k.Curve.Params().BitSize != 521 {
				t.Fatalf("want a P-521 key, got %T", raw)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := SSHKey(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 2 {
				t.Fatalf("keys: %v, want privateKey and publicKey", keysOf(out))
			}
			raw, err := ssh.ParseRawPrivateKey(out[SSHPrivateKeyKey])
			if err != nil {
				t.Fatalf("privateKey is not an OpenSSH private key: %v", err)
			}
			if !bytes.HasPrefix(out[SSHPrivateKeyKey], []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
				t.Fatalf("privateKey is not in OpenSSH's format")
			}
			tt.check(t, raw)
			pub, comment, _, rest, err := ssh.ParseAuthorizedKey(out[SSHPublicKeyKey])
			if err != nil || len(rest) != 0 {
				t.Fatalf("publicKey is not one authorized_keys line: %v", err)
			}
			if pub.Type() != tt.keyType || comment != tt.spec.Comment {
				t.Fatalf("publicKey type %s comment %q, want %s %q", pub.Type(), comment, tt.keyType, tt.spec.Comment)
			}
			// The public key belongs to the private key: a signature by
			// the one verifies with the other.
			signer, err := ssh.NewSignerFromKey(raw)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := signer.Sign(nil, []byte("data"))
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Verify([]byte("data"), sig); err != nil {
				t.Fatalf("publicKey does not verify the private key's signature: %v", err)
			}
			again, err := SSHKey(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(again[SSHPrivateKeyKey], out[SSHPrivateKeyKey]) {
				t.Fatal("two runs made the same key")
			}
		})
	}
}

func TestSSHKeyRefusesNamingTheField(t *testing.T) {
	tests := []struct {
		name, field string
		spec        genv1alpha1.SSHKeySpec
	}{
		{"weak rsa", "spec.keySize", genv1alpha1.SSHKeySpec{KeyType: "rsa", KeySize: intp(1024)}},
		{"huge rsa", "spec.keySize", genv1alpha1.SSHKeySpec{KeySize: intp(16384)}},
		{"ecdsa size", "spec.keySize", genv1alpha1.SSHKeySpec{KeyType: "ecdsa", KeySize: intp(512)}},
		{"unknown type", "spec.keyType", genv1alpha1.SSHKeySpec{KeyType: "dsa"}},
		{"comment with a line break", "spec.comment", genv1alpha1.SSHKeySpec{KeyType: "ed25519", Comment: "a\nssh-ed25519 AAAA attacker"}},
		{"long comment", "spec.comment", genv1alpha1.SSHKeySpec{KeyType: "ed25519", Comment: strings.Repeat("c", MaxSSHKeyComment+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SSHKey(tt.spec)
			var se *SpecError
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidSpec) || se.Field != tt.field {
				t.Fatalf("got %v, want a SpecError naming %s", err, tt.field)
			}
		})
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
