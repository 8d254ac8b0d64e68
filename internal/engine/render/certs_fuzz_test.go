package render

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"math/big"
	"os"
	"testing"
	"time"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// fixedText fails unless err is nil or one of the helpers' fixed messages:
// a helper's error never carries its input.
func fixedText(t *testing.T, what string, err error) {
	t.Helper()
	var se safeError
	if err != nil && !errors.As(err, &se) {
		t.Fatalf("%s: error %q is not fixed text", what, err)
	}
}

// FuzzPKCS12 decodes fuzzed archives: no panic, only fixed-text errors,
// and no archive keeps a call busy for long (key-derivation work is
// bounded before decoding).
func FuzzPKCS12(f *testing.F) {
	p := getPKI(f)
	for _, enc := range []*gopkcs12.Encoder{gopkcs12.Modern, gopkcs12.LegacyDES, gopkcs12.LegacyRC2, gopkcs12.Passwordless} {
		pass := "pw"
		if enc == gopkcs12.Passwordless {
			pass = ""
		}
		der, err := enc.Encode(p.leafKey, p.leaf, []*x509.Certificate{p.inter, p.root}, pass)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der, pass)
	}
	ts, err := gopkcs12.Modern.EncodeTrustStore([]*x509.Certificate{p.root}, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ts, "")
	f.Add([]byte(pfxWithFuzz(f, big.NewInt(1<<31-1))), "")
	if b, err := os.ReadFile("testdata/rfc9579-a1.txt"); err == nil {
		if der, err := base64.StdEncoding.DecodeString(string(b)); err == nil {
			f.Add(der, "1234") // RFC 9579 A.1: PBMAC1
		}
	}
	f.Add([]byte("not an archive"), "")
	f.Fuzz(func(t *testing.T, der []byte, pass string) {
		start := time.Now()
		_, err := pkcs12keyPass(pass, string(der))
		fixedText(t, "pkcs12keyPass", err)
		_, err = pkcs12certPass(pass, string(der))
		fixedText(t, "pkcs12certPass", err)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("decoding took %v", d)
		}
	})
}

// pfxWithFuzz is pfxWith for a fuzz target's seed: a PFX whose encrypted
// content asks for iter iterations.
func pfxWithFuzz(f *testing.F, iter *big.Int) string {
	f.Helper()
	// pfxWith reports only encoding errors, which these fixed inputs do
	// not have; a throwaway *testing.T receives them.
	t := &testing.T{}
	return pfxWith(t, pbeAlgorithm(t, iter), big.NewInt(1))
}

// FuzzCertPEM feeds fuzzed PEM to every helper that parses certificates or
// private keys: no panic and only fixed-text errors.
func FuzzCertPEM(f *testing.F) {
	p := getPKI(f)
	chain := pemOf(p.leaf, p.inter, p.root)
	key := keyPEM(f, p.leafKey)
	f.Add(chain, uint8(0))
	f.Add(pemOf(p.root, p.leaf), uint8(1))
	f.Add(pemOf(p.leaf, p.other), uint8(2))
	f.Add("junk\n"+chain+key, uint8(3))
	f.Add(key, uint8(4))
	f.Add("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", uint8(0))
	types := []string{"leaf", "intermediate", "root", ""}
	f.Fuzz(func(t *testing.T, in string, n uint8) {
		_, err := filterCertChain(types[int(n)%len(types)], in)
		fixedText(t, "filterCertChain", err)
		_, err = certSANs(in)
		fixedText(t, "certSANs", err)
		_, err = pemTruststoreToPKCS12(in)
		fixedText(t, "pemTruststoreToPKCS12", err)
		_, err = fullPemToPkcs12(in, key)
		fixedText(t, "fullPemToPkcs12 (certificates)", err)
		_, err = pemToPkcs12Pass(chain, in, "pw")
		fixedText(t, "pemToPkcs12Pass (key)", err)
		_, err = rsaDecrypt("RSA-OAEP", "SHA256", "ciphertext", in)
		fixedText(t, "rsaDecrypt (key)", err)
	})
}

// FuzzJWK feeds fuzzed JSON Web Keys to jwkPublicKeyPem and
// jwkPrivateKeyPem: no panic and only fixed-text errors.
func FuzzJWK(f *testing.F) {
	for _, s := range []string{
		`{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}`,
		`{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}`,
		`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`,
		`{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}`,
		`{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB","p":"Aw","q":"Aw"}`,
		`{}`, `[]`, `null`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		_, err := jwkPublicKeyPem(in)
		fixedText(t, "jwkPublicKeyPem", err)
		_, err = jwkPrivateKeyPem(in)
		fixedText(t, "jwkPrivateKeyPem", err)
	})
}
