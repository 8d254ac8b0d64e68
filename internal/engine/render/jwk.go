package render

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"

	jose "github.com/go-jose/go-jose/v4"
)

// ESO's JSON Web Key helpers.

// maxJWK bounds a JSON Web Key a template may read: an 8192-bit RSA
// private key is about 6 KiB of JSON. Parsing a private key checks its
// arithmetic, whose cost grows with the key.
const maxJWK = 16 << 10

var (
	errJWKTooLarge error = safeError("the JSON Web Key is larger than 16 KiB")
	errJWKInvalid  error = safeError("the value is not a JSON Web Key (RSA, EC or OKP Ed25519)")
	errJWKPublic   error = safeError("the JSON Web Key holds no private key")
	errJWKEncode   error = safeError("the JSON Web Key's type cannot be encoded in PEM (RSA, EC and Ed25519 keys can)")
)

func parseJWK(s string) (*jose.JSONWebKey, error) {
	if len(s) > maxJWK {
		return nil, errJWKTooLarge
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON([]byte(s)); err != nil || k.Key == nil {
		return nil, errJWKInvalid
	}
	return &k, nil
}

// jwkPublicKeyPem returns the public key of a JSON Web Key as a PKIX PEM
// block ("PUBLIC KEY"). Given a private key it returns its public part.
func jwkPublicKeyPem(s string) (string, error) {
	k, err := parseJWK(s)
	if err != nil {
		return "", err
	}
	pub := k.Key
	if signer, ok := pub.(crypto.Signer); ok {
		pub = signer.Public()
	}
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return "", errJWKEncode
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", errJWKEncode
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: pemTypePublicKey, Bytes: der})), nil
}

// jwkPrivateKeyPem returns the private key of a JSON Web Key as a PKCS#8
// PEM block ("PRIVATE KEY").
func jwkPrivateKeyPem(s string) (string, error) {
	k, err := parseJWK(s)
	if err != nil {
		return "", err
	}
	switch k.Key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return "", errJWKPublic
	default:
		return "", errJWKEncode
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		return "", errJWKEncode
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: pemTypePrivateKey, Bytes: der})), nil
}
