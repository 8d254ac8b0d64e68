package generator

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"

	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
)

// Output keys and defaults of the SSHKey generator, as in ESO.
const (
	SSHPrivateKeyKey = "privateKey"
	SSHPublicKeyKey  = "publicKey"

	SSHKeyTypeRSA     = "rsa"
	SSHKeyTypeECDSA   = "ecdsa"
	SSHKeyTypeEd25519 = "ed25519"

	// DefaultRSAKeySize and DefaultECDSAKeySize are the sizes when
	// spec.keySize is unset, as in ESO.
	DefaultRSAKeySize   = 2048
	DefaultECDSAKeySize = 256
	// MinRSAKeySize is keyferry's floor: ESO generates any size the Go
	// library accepts, keyferry refuses RSA keys weaker than 2048 bits.
	MinRSAKeySize = 2048
	// MaxRSAKeySize bounds the work one spec can ask for (the CRD's
	// maximum too).
	MaxRSAKeySize = 8192
	// MaxSSHKeyComment bounds spec.comment.
	MaxSSHKeyComment = 1024

	kindSSHKey = "SSHKey"
)

// SSHKey returns a new SSH key pair with ESO's meaning of the spec:
// "privateKey" is the private key in OpenSSH's PEM format (with the comment
// inside) and "publicKey" the authorized_keys line, with the comment
// appended when one is set. keyType is rsa (default; keySize 2048 to 8192
// bits, default 2048), ecdsa (keySize 256, 384 or 521, default 256) or
// ed25519 (keySize ignored).
func SSHKey(spec genv1alpha1.SSHKeySpec) (map[string][]byte, error) {
	if err := checkSSHKeyComment(spec.Comment); err != nil {
		return nil, err
	}
	key, err := newSSHPrivateKey(spec)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(key, spec.Comment)
	if err != nil {
		return nil, fmt.Errorf("encoding the SSH private key: %w", err)
	}
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("encoding the SSH public key: %w", err)
	}
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n")
	if spec.Comment != "" {
		line += " " + spec.Comment
	}
	return map[string][]byte{
		SSHPrivateKeyKey: pem.EncodeToMemory(block),
		SSHPublicKeyKey:  []byte(line + "\n"),
	}, nil
}

// newSSHPrivateKey makes the private key spec asks for.
func newSSHPrivateKey(spec genv1alpha1.SSHKeySpec) (crypto.Signer, error) {
	switch spec.KeyType {
	case SSHKeyTypeRSA, "":
		bits := DefaultRSAKeySize
		if spec.KeySize != nil {
			bits = *spec.KeySize
		}
		if bits < MinRSAKeySize || bits > MaxRSAKeySize {
			return nil, specErrorf(kindSSHKey, "spec.keySize", "an rsa key must have %d to %d bits, not %d", MinRSAKeySize, MaxRSAKeySize, bits)
		}
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, fmt.Errorf("generating an rsa key: %w", err)
		}
		return k, nil
	case SSHKeyTypeECDSA:
		bits := DefaultECDSAKeySize
		if spec.KeySize != nil {
			bits = *spec.KeySize
		}
		curve, ok := map[int]elliptic.Curve{256: elliptic.P256(), 384: elliptic.P384(), 521: elliptic.P521()}[bits]
		if !ok {
			return nil, specErrorf(kindSSHKey, "spec.keySize", "an ecdsa key has 256, 384 or 521 bits, not %d", bits)
		}
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generating an ecdsa key: %w", err)
		}
		return k, nil
	case SSHKeyTypeEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generating an ed25519 key: %w", err)
		}
		return k, nil
	default:
		return nil, specErrorf(kindSSHKey, "spec.keyType", "%q is not rsa, ecdsa or ed25519", spec.KeyType)
	}
}

// checkSSHKeyComment refuses a comment that would break the public key's
// authorized_keys line (a line break) or is unreasonably long.
func checkSSHKeyComment(c string) error {
	if len(c) > MaxSSHKeyComment {
		return specErrorf(kindSSHKey, "spec.comment", "is %d bytes long, at most %d", len(c), MaxSSHKeyComment)
	}
	if strings.ContainsAny(c, "\r\n\x00") {
		return specErrorf(kindSSHKey, "spec.comment", "must be one line: an authorized_keys entry ends at a line break")
	}
	return nil
}
