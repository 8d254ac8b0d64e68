// This file turns what Key Vault returns for an object into the bytes the
// Azure provider of the Secrets Store CSI driver writes for it, and splits
// a PEM bundle into the certificates and the private key of a
// kubernetes.io/tls Secret.

package azurekv

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/keyferry/keyferry/internal/engine/render"
	"github.com/keyferry/keyferry/internal/provider"
)

// content turns the raw value Key Vault returns for a file's object into
// the bytes the Azure provider of the Secrets Store CSI driver writes for
// it, which are what a SecretSync's sourcePath reads:
//   - cert: the certificate in PEM (the vault returns DER);
//   - key: the public key in PEM, PKIX (the vault returns a JSON Web Key);
//   - secret: the value, decoded from objectEncoding;
//
// and, with a part, the certificates (tls.crt) or the private key (tls.key)
// of that content, as the Secrets Store Sync Controller splits them for a
// kubernetes.io/tls Secret. Errors describe the object, never its content.
func content(f classFile, part string, raw []byte) ([]byte, error) {
	var b []byte
	var err error
	switch f.obj.Type {
	case objectCert:
		b, err = certificatePEM(raw)
	case objectKey:
		b, err = publicKeyPEM(raw)
	default:
		b, err = decodeSecret(raw, f.obj.Encoding)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.describe(), err)
	}
	switch part {
	case partCert:
		b, err = certificatesOf(b)
	case partKey:
		b, err = privateKeyOf(b)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.describe(), err)
	}
	return b, nil
}

// badValue marks conversion failures: the store answered, but not with
// something the object's type can hold.
func badValue(format string, args ...any) error {
	return fmt.Errorf("%w: %s", provider.ErrBadResponse, fmt.Sprintf(format, args...))
}

func certificatePEM(der []byte) ([]byte, error) {
	if _, err := x509.ParseCertificate(der); err != nil {
		return nil, badValue("the certificate is not DER-encoded X.509")
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// jwk is the public part of a JSON Web Key as Key Vault returns it.
type jwk struct {
	Kty string `json:"kty"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func publicKeyPEM(raw []byte) ([]byte, error) {
	var k jwk
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, badValue("the key is not a JSON Web Key")
	}
	var pub any
	switch strings.TrimSuffix(strings.ToUpper(k.Kty), "-HSM") {
	case "RSA":
		n, err1 := b64url(k.N)
		e, err2 := b64url(k.E)
		if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return nil, badValue("the RSA key has no valid modulus or exponent")
		}
		exp := new(big.Int).SetBytes(e)
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}
	case "EC":
		curve, ok := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[k.Crv]
		if !ok {
			return nil, badValue("the EC key's curve %q is not P-256, P-384 or P-521", k.Crv)
		}
		x, err1 := b64url(k.X)
		y, err2 := b64url(k.Y)
		if err1 != nil || err2 != nil {
			return nil, badValue("the EC key has no valid point")
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) > size || len(y) > size {
			return nil, badValue("the EC key has no valid point")
		}
		// Uncompressed point: 0x04 || X || Y, each left-padded to the
		// curve's size; parsing it checks that the point is on the curve.
		point := make([]byte, 1+2*size)
		point[0] = 4
		copy(point[1+size-len(x):1+size], x)
		copy(point[1+2*size-len(y):], y)
		var err error
		if pub, err = ecdsa.ParseUncompressedPublicKey(curve, point); err != nil {
			return nil, badValue("the EC key's point is not on curve %s", k.Crv)
		}
	default:
		return nil, badValue("keys of type %q have no public key to synchronize (RSA and EC keys do)", k.Kty)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, badValue("the public key cannot be encoded")
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

func b64url(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// decodeSecret applies objectEncoding: the value in Key Vault is text in
// that encoding.
func decodeSecret(raw []byte, encoding string) ([]byte, error) {
	switch encoding {
	case EncodingBase64:
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
		if err != nil {
			return nil, badValue("the value is not base64 (objectEncoding: base64)")
		}
		return b, nil
	case EncodingHex:
		b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
		if err != nil {
			return nil, badValue("the value is not hexadecimal (objectEncoding: hex)")
		}
		return b, nil
	default:
		return raw, nil
	}
}

// certificatesOf returns the certificates of a PEM bundle (or of a
// password-less PKCS#12 archive), in PEM.
func certificatesOf(b []byte) ([]byte, error) {
	blocks := pemBlocks(b)
	if len(blocks) == 0 {
		blocks = pkcs12Blocks(b)
	}
	var out []byte
	for _, blk := range blocks {
		if blk.Type == "CERTIFICATE" {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes})...)
		}
	}
	if len(out) == 0 {
		return nil, badValue("no certificate found for tls.crt (expected PEM or PKCS#12)")
	}
	return out, nil
}

// privateKeyOf returns the private key of a PEM bundle (or of a
// password-less PKCS#12 archive) in PEM: RSA keys as PKCS#1 ("RSA PRIVATE
// KEY") and EC keys as SEC 1 ("EC PRIVATE KEY"), as the Secrets Store Sync
// Controller writes them; other keys as PKCS#8.
func privateKeyOf(b []byte) ([]byte, error) {
	blocks := pemBlocks(b)
	if len(blocks) == 0 {
		blocks = pkcs12Blocks(b)
	}
	for _, blk := range blocks {
		if blk.Type == "CERTIFICATE" {
			continue
		}
		key, err := parsePrivateKey(blk.Bytes)
		if err != nil {
			continue
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
		case *ecdsa.PrivateKey:
			der, err := x509.MarshalECPrivateKey(k)
			if err != nil {
				return nil, badValue("the EC private key cannot be encoded")
			}
			return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
		case ed25519.PrivateKey:
			der, err := x509.MarshalPKCS8PrivateKey(k)
			if err != nil {
				return nil, badValue("the private key cannot be encoded")
			}
			return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
		}
	}
	return nil, badValue("no private key found for tls.key (expected PEM or PKCS#12 with an RSA, EC or Ed25519 key)")
}

func parsePrivateKey(der []byte) (any, error) {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("not a private key")
}

func pemBlocks(b []byte) []*pem.Block {
	var out []*pem.Block
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out
		}
		out = append(out, blk)
	}
}

// pkcs12Blocks reads a password-less PKCS#12 archive, binary or base64 (as
// Key Vault stores the secret of a PKCS#12 certificate): its private key
// (PKCS#8) and its certificates, leaf first. It decodes through
// render.DecodePKCS12, which bounds the archive's size and key-derivation
// work, so an archive asking for billions of iterations is refused at
// once instead of holding the sync.
func pkcs12Blocks(b []byte) []*pem.Block {
	if blocks := pkcs12ToBlocks(b); blocks != nil {
		return blocks
	}
	if der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err == nil {
		return pkcs12ToBlocks(der)
	}
	return nil
}

func pkcs12ToBlocks(der []byte) []*pem.Block {
	key, leaf, cas, err := render.DecodePKCS12(der, "")
	if err != nil {
		return nil
	}
	var out []*pem.Block
	if key != nil {
		if k, err := x509.MarshalPKCS8PrivateKey(key); err == nil {
			out = append(out, &pem.Block{Type: "PRIVATE KEY", Bytes: k})
		}
	}
	if leaf != nil {
		out = append(out, &pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	}
	for _, c := range cas {
		out = append(out, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return out
}
