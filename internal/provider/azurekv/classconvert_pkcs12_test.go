package azurekv

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/keyferry/keyferry/internal/engine/render"
)

// Key Vault keeps a PKCS#12 certificate's secret as a password-less
// archive, in base64. tls.crt and tls.key come out of it for any encoder's
// algorithms, including the AES (PBES2) ones x/crypto/pkcs12 cannot read;
// an archive asking for more key-derivation work than the bound is refused
// at once.
func TestPKCS12CertificatesConvertWithinBounds(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	certDER := selfSignedBy(t, key)
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		t.Fatal(err)
	}
	for name, enc := range map[string]*gopkcs12.Encoder{"passwordless": gopkcs12.Passwordless, "modern (AES-256, PBKDF2)": gopkcs12.Modern, "legacy RC2": gopkcs12.LegacyRC2} {
		t.Run(name, func(t *testing.T) {
			der, err := enc.Encode(key, cert, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			for form, raw := range map[string][]byte{"binary": der, "base64": []byte(base64.StdEncoding.EncodeToString(der))} {
				crt, err := certificatesOf(raw)
				if err != nil {
					t.Fatalf("%s: certificatesOf: %v", form, err)
				}
				if blk, _ := pem.Decode(crt); blk == nil || !bytes.Equal(blk.Bytes, certDER) {
					t.Fatalf("%s: tls.crt is not the archive's certificate", form)
				}
				k, err := privateKeyOf(raw)
				if err != nil {
					t.Fatalf("%s: privateKeyOf: %v", form, err)
				}
				blk, _ := pem.Decode(k)
				if blk == nil || blk.Type != "RSA PRIVATE KEY" {
					t.Fatalf("%s: tls.key is not an RSA PRIVATE KEY block", form)
				}
				if got, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err != nil || !got.Equal(key) {
					t.Fatalf("%s: tls.key is not the archive's key (%v)", form, err)
				}
			}
		})
	}
	// 3 derivations of 400,000 iterations (MAC, certificates, key): over
	// the 1,000,000 bound.
	heavy, err := gopkcs12.Modern.WithIterations(400_000).Encode(key, cert, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certificatesOf(heavy); err == nil {
		t.Fatal("an archive over the key-derivation bound was decoded")
	}
	if _, err := privateKeyOf(heavy); err == nil {
		t.Fatal("an archive over the key-derivation bound was decoded")
	}
	// It is refused by the bound (before any derivation), not by a decoder
	// failure: the decoder these functions use says so.
	if _, _, _, err := render.DecodePKCS12(heavy, ""); err == nil || !strings.Contains(err.Error(), "key-derivation iterations") {
		t.Fatalf("DecodePKCS12 = %v; want the key-derivation bound", err)
	}
}
