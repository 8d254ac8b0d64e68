package render

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // testing ESO's "SHA1" OAEP.
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"hash"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// testPKI is a root CA, an intermediate CA, a leaf signed by the
// intermediate, a second unrelated self-signed certificate, and their keys.
type testPKI struct {
	root, inter, leaf, other *x509.Certificate
	leafKey                  *ecdsa.PrivateKey
	rootKey                  *ecdsa.PrivateKey
}

var (
	pkiOnce sync.Once
	pki     testPKI
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func issue(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func getPKI(t testing.TB) testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		now := time.Now()
		ca := func(n int64, cn string) *x509.Certificate {
			return &x509.Certificate{
				SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: cn},
				NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
				IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
			}
		}
		rootKey, interKey, leafKey, otherKey := newKey(t), newKey(t), newKey(t), newKey(t)
		pki.rootKey, pki.leafKey = rootKey, leafKey
		rt := ca(1, "root")
		pki.root = issue(t, rt, rt, rootKey.Public(), rootKey)
		pki.inter = issue(t, ca(2, "intermediate"), pki.root, interKey.Public(), rootKey)
		u, _ := url.Parse("spiffe://example.org/app")
		pki.leaf = issue(t, &x509.Certificate{
			SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			DNSNames: []string{"app.example.org", "www.example.org"}, IPAddresses: []net.IP{net.ParseIP("10.0.0.1")},
			EmailAddresses: []string{"ops@example.org"}, URIs: []*url.URL{u},
		}, pki.inter, leafKey.Public(), interKey)
		ot := ca(4, "other")
		pki.other = issue(t, ot, ot, otherKey.Public(), otherKey)
	})
	if pki.leaf == nil {
		t.Fatal("building the test PKI failed")
	}
	return pki
}

func pemOf(certs ...*x509.Certificate) string { return encodeCerts(certs) }

func keyPEM(t testing.TB, k any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func b64dec(t testing.TB, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantSafe fails unless err is one of the helpers' fixed messages and says
// what want says.
func wantSafe(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	var se safeError
	if !errors.As(err, &se) {
		t.Fatalf("error %q is not fixed text", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q, want it to say %q", err, want)
	}
}

func TestPKCS12Helpers(t *testing.T) {
	p := getPKI(t)
	chain := pemOf(p.leaf, p.inter, p.root)
	key := keyPEM(t, p.leafKey)
	full, err := fullPemToPkcs12Pass(chain, key, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	single, err := pemToPkcs12(chain, key)
	if err != nil {
		t.Fatal(err)
	}
	// An archive written by another tool (go-pkcs12's legacy encoder, as
	// OpenSSL 1.x and Windows write them), chain out of order.
	legacy, err := gopkcs12.Legacy.Encode(p.leafKey, p.leaf, []*x509.Certificate{p.root, p.inter}, "")
	if err != nil {
		t.Fatal(err)
	}
	disjunct, err := gopkcs12.Modern.Encode(p.leafKey, p.leaf, []*x509.Certificate{p.other}, "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		call    func() (string, error)
		want    string
		wantErr string
	}{
		{"pkcs12certPass orders leaf, intermediate, root", func() (string, error) { return pkcs12certPass("s3cret", b64dec(t, full)) }, chain, ""},
		{"pkcs12keyPass returns the PKCS#8 key", func() (string, error) { return pkcs12keyPass("s3cret", b64dec(t, full)) }, key, ""},
		{"pkcs12cert of pemToPkcs12 has the leaf only", func() (string, error) { return pkcs12cert(b64dec(t, single)) }, pemOf(p.leaf), ""},
		{"pkcs12key of pemToPkcs12", func() (string, error) { return pkcs12key(b64dec(t, single)) }, key, ""},
		{"legacy archive, chain reordered", func() (string, error) { return pkcs12cert(string(legacy)) }, chain, ""},
		{"legacy archive key", func() (string, error) { return pkcs12key(string(legacy)) }, key, ""},
		{"disjunct certificates in archive order", func() (string, error) { return pkcs12cert(string(disjunct)) }, pemOf(p.leaf, p.other), ""},
		{"wrong password", func() (string, error) { return pkcs12keyPass("wrong", b64dec(t, full)) }, "", "cannot be decrypted with the given password"},
		{"no password for an encrypted archive", func() (string, error) { return pkcs12cert(b64dec(t, full)) }, "", "cannot be decrypted with the given password"},
		{"base64 given instead of DER", func() (string, error) { return pkcs12cert(full) }, "", "not a PKCS#12 archive"},
		{"not an archive", func() (string, error) { return pkcs12key("hello") }, "", "not a PKCS#12 archive"},
		{"archive too large", func() (string, error) { return pkcs12key(strings.Repeat("x", maxPKCS12+1)) }, "", "larger than 128 KiB"},
		{"pemToPkcs12 without a certificate", func() (string, error) { return pemToPkcs12(key, key) }, "", "not a valid X.509 certificate"},
		{"pemToPkcs12 with no PEM", func() (string, error) { return pemToPkcs12("junk", key) }, "", "no PEM certificate"},
		{"pemToPkcs12 without a key", func() (string, error) { return pemToPkcs12(chain, "junk") }, "", "no PEM private key"},
		{"pemToPkcs12 with a certificate as key", func() (string, error) { return pemToPkcs12(chain, chain) }, "", "cannot be parsed"},
		{"pemToPkcs12 with another key", func() (string, error) { return pemToPkcs12(chain, keyPEM(t, p.rootKey)) }, "", "does not match"},
		{"pemToPkcs12 with an oversized key", func() (string, error) {
			return pemToPkcs12(chain, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: make([]byte, maxKeyDER+1)})))
		}, "", "larger than 8192-bit"},
		{"truststore without certificates", func() (string, error) { return pemTruststoreToPKCS12("") }, "", "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			if tt.wantErr != "" {
				wantSafe(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestPemTruststoreToPKCS12(t *testing.T) {
	p := getPKI(t)
	for _, pass := range []string{"", "changeit"} {
		out, err := pemTruststoreToPKCS12Pass(pemOf(p.root, p.inter), pass)
		if err != nil {
			t.Fatal(err)
		}
		certs, err := gopkcs12.DecodeTrustStore([]byte(b64dec(t, out)), pass)
		if err != nil {
			t.Fatal(err)
		}
		if len(certs) != 2 || !certs[0].Equal(p.root) || !certs[1].Equal(p.inter) {
			t.Fatalf("password %q: the trust store holds %d certificates, want root and intermediate", pass, len(certs))
		}
	}
	if _, err := pemTruststoreToPKCS12(pemOf(p.root)); err != nil {
		t.Fatal(err)
	}
}

// pbeAlgorithm is DER of an AlgorithmIdentifier for a PKCS#12 PBE (3DES)
// asking for n iterations.
func pbeAlgorithm(t *testing.T, n *big.Int) asn1.RawValue {
	t.Helper()
	params, err := asn1.Marshal(struct {
		Salt       []byte
		Iterations *big.Int
	}{[]byte("saltsalt"), n})
	if err != nil {
		t.Fatal(err)
	}
	alg, err := asn1.Marshal(struct {
		OID    asn1.ObjectIdentifier
		Params asn1.RawValue
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}, asn1.RawValue{FullBytes: params}})
	if err != nil {
		t.Fatal(err)
	}
	return asn1.RawValue{FullBytes: alg}
}

// pfxWith is a PFX whose authenticated safe holds one encrypted content
// using alg and, with mac, a MAC asking for macIter iterations.
func pfxWith(t *testing.T, alg asn1.RawValue, macIter *big.Int) string {
	t.Helper()
	encrypted, err := asn1.Marshal(struct {
		Version int
		Content struct {
			Type asn1.ObjectIdentifier
			Alg  asn1.RawValue
		}
	}{Version: 0, Content: struct {
		Type asn1.ObjectIdentifier
		Alg  asn1.RawValue
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}, alg}})
	if err != nil {
		t.Fatal(err)
	}
	safe, err := asn1.Marshal([]asn1.RawValue{{FullBytes: encrypted}})
	if err != nil {
		t.Fatal(err)
	}
	octets, err := asn1.Marshal(safe)
	if err != nil {
		t.Fatal(err)
	}
	authSafe, err := asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}, explicit0(octets)})
	if err != nil {
		t.Fatal(err)
	}
	pfx := struct {
		Version  int
		AuthSafe asn1.RawValue
		MacData  asn1.RawValue `asn1:"optional"`
	}{Version: 3, AuthSafe: asn1.RawValue{FullBytes: authSafe}}
	if macIter != nil {
		mac, err := asn1.Marshal(struct {
			Digest     asn1.RawValue
			Salt       []byte
			Iterations *big.Int
		}{asn1.RawValue{FullBytes: []byte{0x30, 0}}, []byte("salt"), macIter})
		if err != nil {
			t.Fatal(err)
		}
		pfx.MacData = asn1.RawValue{FullBytes: mac}
	}
	der, err := asn1.Marshal(pfx)
	if err != nil {
		t.Fatal(err)
	}
	return string(der)
}

func TestPKCS12WorkIsBounded(t *testing.T) {
	small, huge := big.NewInt(2048), big.NewInt(1<<31-1)
	tests := []struct {
		name    string
		pfx     string
		refused bool
	}{
		{"usual iterations", pfxWith(t, pbeAlgorithm(t, small), small), false},
		{"PBE asking for 2^31 iterations", pfxWith(t, pbeAlgorithm(t, huge), small), true},
		{"PBE over the budget counted twice (key and IV)", pfxWith(t, pbeAlgorithm(t, big.NewInt(maxPKCS12Iterations/2+1)), nil), true},
		{"PBE with a count beyond int64", pfxWith(t, pbeAlgorithm(t, new(big.Int).Lsh(big.NewInt(1), 80)), nil), true},
		{"PBE with a negative count", pfxWith(t, pbeAlgorithm(t, big.NewInt(-5)), nil), true},
		{"MAC asking for 2^31 iterations", pfxWith(t, pbeAlgorithm(t, small), huge), true},
		{"MAC and PBE together over the budget", pfxWith(t, pbeAlgorithm(t, big.NewInt(300_000)), big.NewInt(500_000)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkPKCS12Work([]byte(tt.pfx))
			if tt.refused != (err == errPKCS12Work) {
				t.Fatalf("checkPKCS12Work = %v, refused want %v", err, tt.refused)
			}
			if tt.refused {
				start := time.Now()
				_, err := pkcs12key(tt.pfx)
				wantSafe(t, err, "key-derivation iterations")
				// Providers decode through DecodePKCS12: the same bound.
				_, _, _, err = DecodePKCS12([]byte(tt.pfx), "")
				wantSafe(t, err, "key-derivation iterations")
				if d := time.Since(start); d > time.Second {
					t.Fatalf("refusing took %v", d)
				}
			}
		})
	}
	// Archives written by real encoders pass, whatever their algorithms.
	p := getPKI(t)
	for name, enc := range map[string]*gopkcs12.Encoder{"modern": gopkcs12.Modern, "legacy DES": gopkcs12.LegacyDES, "legacy RC2": gopkcs12.LegacyRC2, "passwordless": gopkcs12.Passwordless} {
		pass := "pw"
		if enc == gopkcs12.Passwordless {
			pass = ""
		}
		der, err := enc.Encode(p.leafKey, p.leaf, []*x509.Certificate{p.inter}, pass)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkPKCS12Work(der); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := pkcs12keyPass(pass, string(der)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A real archive over the budget (PBKDF2 in the MAC, the certificates
	// and the key: 3 x 400,000) is refused.
	der, err := gopkcs12.Modern.WithIterations(400_000).Encode(p.leafKey, p.leaf, nil, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPKCS12Work(der); err != errPKCS12Work {
		t.Fatalf("checkPKCS12Work = %v, want refused", err)
	}
}

func TestFilterCertChain(t *testing.T) {
	p := getPKI(t)
	key := keyPEM(t, p.leafKey)
	tests := []struct {
		name, certType, in, want, wantErr string
	}{
		{"leaf of an ordered chain", "leaf", pemOf(p.leaf, p.inter, p.root), pemOf(p.leaf), ""},
		{"leaf of a shuffled chain", "leaf", pemOf(p.root, p.leaf, p.inter), pemOf(p.leaf), ""},
		{"intermediate", "intermediate", pemOf(p.inter, p.root, p.leaf), pemOf(p.inter), ""},
		{"root", "root", pemOf(p.root, p.inter, p.leaf), pemOf(p.root), ""},
		{"chain without root: root is empty", "root", pemOf(p.leaf, p.inter), "", ""},
		{"chain without root: intermediate", "intermediate", pemOf(p.leaf, p.inter), pemOf(p.inter), ""},
		{"self-signed alone is not a leaf", "leaf", pemOf(p.root), "", ""},
		{"self-signed alone is a root", "root", pemOf(p.root), pemOf(p.root), ""},
		{"leaf alone has no intermediate", "intermediate", pemOf(p.leaf), "", ""},
		{"leaf alone", "leaf", pemOf(p.leaf), pemOf(p.leaf), ""},
		{"unknown type", "ca", pemOf(p.leaf, p.inter, p.root), "", ""},
		{"disjunct certificates", "leaf", pemOf(p.leaf, p.other), "", "multiple leaf or disjunct"},
		{"a private key in the chain", "leaf", pemOf(p.leaf) + key, "", "not a valid X.509 certificate"},
		{"no certificate", "leaf", "nothing here", "", "no leaf certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := filterCertChain(tt.certType, tt.in)
			if tt.wantErr != "" {
				wantSafe(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestCertSANs(t *testing.T) {
	p := getPKI(t)
	tests := []struct {
		name, in string
		want     []string
		wantErr  string
	}{
		{"every kind, in ESO's order", pemOf(p.leaf), []string{"app.example.org", "www.example.org", "10.0.0.1", "ops@example.org", "spiffe://example.org/app"}, ""},
		{"first certificate only", pemOf(p.leaf, p.root), []string{"app.example.org", "www.example.org", "10.0.0.1", "ops@example.org", "spiffe://example.org/app"}, ""},
		{"text before the PEM block", "subject=leaf\n" + pemOf(p.leaf), []string{"app.example.org", "www.example.org", "10.0.0.1", "ops@example.org", "spiffe://example.org/app"}, ""},
		{"no SANs", pemOf(p.root), []string{}, ""},
		{"no PEM", "junk", nil, "no PEM certificate"},
		{"not a certificate", keyPEM(t, p.leafKey), nil, "not a valid X.509 certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := certSANs(tt.in)
			if tt.wantErr != "" {
				wantSafe(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") || got == nil {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func jwkJSON(t *testing.T, k any) string {
	t.Helper()
	b, err := (&jose.JSONWebKey{Key: k}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func pkixPEM(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestJWKHelpers(t *testing.T) {
	rk := rsaKey(t)
	ek := newKey(t)
	_, edk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		jwk         string
		pub, priv   string
		pubErr, err string
	}{
		{name: "RSA private", jwk: jwkJSON(t, rk), pub: pkixPEM(t, rk.Public()), priv: keyPEM(t, rk)},
		{name: "RSA public", jwk: jwkJSON(t, rk.Public()), pub: pkixPEM(t, rk.Public()), err: "holds no private key"},
		{name: "EC private", jwk: jwkJSON(t, ek), pub: pkixPEM(t, ek.Public()), priv: keyPEM(t, ek)},
		{name: "EC public", jwk: jwkJSON(t, ek.Public()), pub: pkixPEM(t, ek.Public()), err: "holds no private key"},
		{name: "Ed25519 private", jwk: jwkJSON(t, edk), pub: pkixPEM(t, edk.Public()), priv: keyPEM(t, edk)},
		{name: "symmetric key", jwk: jwkJSON(t, []byte("0123456789abcdef")), pubErr: "cannot be encoded in PEM", err: "cannot be encoded in PEM"},
		{name: "not JSON", jwk: "nope", pubErr: "not a JSON Web Key", err: "not a JSON Web Key"},
		{name: "unknown key type", jwk: `{"kty":"XYZ"}`, pubErr: "not a JSON Web Key", err: "not a JSON Web Key"},
		{name: "RSA key without modulus", jwk: `{"kty":"RSA","e":"AQAB"}`, pubErr: "not a JSON Web Key", err: "not a JSON Web Key"},
		{name: "too large", jwk: `{"kty":"RSA","n":"` + strings.Repeat("A", maxJWK) + `","e":"AQAB"}`, pubErr: "larger than 16 KiB", err: "larger than 16 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, err := jwkPublicKeyPem(tt.jwk)
			if tt.pubErr != "" {
				wantSafe(t, err, tt.pubErr)
			} else if err != nil {
				t.Fatal(err)
			} else if pub != tt.pub {
				t.Fatalf("public key\n%s\nwant\n%s", pub, tt.pub)
			}
			priv, err := jwkPrivateKeyPem(tt.jwk)
			if tt.err != "" {
				wantSafe(t, err, tt.err)
			} else if err != nil {
				t.Fatal(err)
			} else if priv != tt.priv {
				t.Fatalf("private key\n%s\nwant\n%s", priv, tt.priv)
			}
		})
	}
}

func TestRSADecrypt(t *testing.T) {
	rk := rsaKey(t)
	key := keyPEM(t, rk)
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}))
	encrypt := func(h hash.Hash, msg string) string {
		ct, err := rsa.EncryptOAEP(h, rand.Reader, &rk.PublicKey, []byte(msg), nil)
		if err != nil {
			t.Fatal(err)
		}
		return string(ct)
	}
	tests := []struct {
		name, scheme, hash, in, key, want, wantErr string
	}{
		{name: "OAEP SHA1", scheme: "RSA-OAEP", hash: "SHA1", in: encrypt(sha1.New(), "one"), key: key, want: "one"},
		{name: "OAEP SHA256", scheme: "RSA-OAEP", hash: "SHA256", in: encrypt(sha256.New(), "two"), key: key, want: "two"},
		{name: "OAEP SHA512", scheme: "RSA-OAEP", hash: "SHA512", in: encrypt(sha512.New(), "three"), key: key, want: "three"},
		{name: "hash None means SHA256", scheme: "RSA-OAEP", hash: "None", in: encrypt(sha256.New(), "four"), key: key, want: "four"},
		{name: "PKCS#1 key", scheme: "RSA-OAEP", hash: "SHA256", in: encrypt(sha256.New(), "five"), key: pkcs1, want: "five"},
		{name: "scheme None returns the input", scheme: "None", hash: "SHA1", in: "plain", key: "", want: "plain"},
		{name: "unknown scheme", scheme: "RSA-PKCS1", hash: "SHA1", in: "x", key: key, wantErr: "scheme is not supported"},
		{name: "wrong hash", scheme: "RSA-OAEP", hash: "SHA1", in: encrypt(sha256.New(), "six"), key: key, wantErr: "cannot be decrypted"},
		{name: "base64 instead of binary", scheme: "RSA-OAEP", hash: "SHA256", in: base64.StdEncoding.EncodeToString([]byte(encrypt(sha256.New(), "x"))), key: key, wantErr: "cannot be decrypted"},
		{name: "EC key", scheme: "RSA-OAEP", hash: "SHA256", in: "x", key: keyPEM(t, newKey(t)), wantErr: "not an RSA key"},
		{name: "no key", scheme: "RSA-OAEP", hash: "SHA256", in: "x", key: "junk", wantErr: "no PEM private key"},
		{name: "oversized key", scheme: "RSA-OAEP", hash: "SHA256", in: "x", key: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: make([]byte, maxKeyDER+1)})), wantErr: "larger than 8192-bit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rsaDecrypt(tt.scheme, tt.hash, tt.in, tt.key)
			if tt.wantErr != "" {
				wantSafe(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCertHelpersInTemplates runs ESO's documented templates through the
// sandbox: the helpers are registered, metered and keep their messages.
func TestCertHelpersInTemplates(t *testing.T) {
	p := getPKI(t)
	chain := pemOf(p.leaf, p.inter, p.root)
	key := keyPEM(t, p.leafKey)
	p12, err := gopkcs12.Modern.Encode(p.leafKey, p.leaf, []*x509.Certificate{p.inter, p.root}, "")
	if err != nil {
		t.Fatal(err)
	}
	rk := rsaKey(t)
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &rk.PublicKey, []byte("db-password"), nil)
	if err != nil {
		t.Fatal(err)
	}
	data := map[string][]byte{
		"p12": p12, "p12b64": []byte(base64.StdEncoding.EncodeToString(p12)),
		"bundle": []byte(chain + key), "key": []byte(key), "jwk": []byte(jwkJSON(t, p.leafKey)),
		"rsakey": []byte(keyPEM(t, rk)), "enc": []byte(base64.StdEncoding.EncodeToString(ct)),
	}
	items := []Item{
		{Key: "tls.crt", Template: `{{ .p12 | pkcs12cert }}`},
		{Key: "tls.key", Template: `{{ .p12b64 | b64dec | pkcs12key }}`},
		{Key: "leaf", Template: `{{ .bundle | filterPEM "CERTIFICATE" | filterCertChain "leaf" }}`},
		{Key: "ca.crt", Template: `{{ .bundle | filterPEM "CERTIFICATE" | filterCertChain "intermediate" }}`},
		{Key: "sans", Template: `{{ .bundle | filterPEM "CERTIFICATE" | filterCertChain "leaf" | certSANs | join "," }}`},
		{Key: "pub", Template: `{{ .jwk | jwkPublicKeyPem }}`},
		{Key: "priv", Template: `{{ .jwk | jwkPrivateKeyPem }}`},
		{Key: "keystore.p12", Template: `{{ fullPemToPkcs12Pass (.bundle | filterPEM "CERTIFICATE") .key "changeit" | b64dec | pkcs12certPass "changeit" }}`},
		{Key: "truststore.p12", Template: `{{ .bundle | filterPEM "CERTIFICATE" | filterCertChain "root" | pemTruststoreToPKCS12 | b64dec | len }}`},
		{Key: "password", Template: `{{ .rsakey | rsaDecrypt "RSA-OAEP" "SHA256" (.enc | b64dec) }}`},
	}
	for i := range items {
		items[i].Source = "spec.target.template.data." + items[i].Key
	}
	out, err := Render(items, data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"tls.crt": chain, "tls.key": key, "leaf": pemOf(p.leaf), "ca.crt": pemOf(p.inter),
		"sans": "app.example.org,www.example.org,10.0.0.1,ops@example.org,spiffe://example.org/app",
		"pub":  pkixPEM(t, p.leafKey.Public()), "priv": key, "keystore.p12": chain, "password": "db-password",
	}
	for k, v := range want {
		if string(out.Data[k]) != v {
			t.Errorf("%s = %q, want %q", k, out.Data[k], v)
		}
	}
	if len(out.Data["truststore.p12"]) == 0 {
		t.Error("truststore.p12 is empty")
	}
	// A failing helper's message reaches the error, the value does not.
	_, err = Render([]Item{{Key: "k", Template: `{{ .v | b64dec | pkcs12key }}`, Source: "s"}}, map[string][]byte{"v": []byte(base64.StdEncoding.EncodeToString([]byte(fuzzCanary)))})
	if err == nil || !strings.Contains(err.Error(), "calling pkcs12key failed: the value is not a PKCS#12 archive") || strings.Contains(err.Error(), fuzzCanary) {
		t.Fatalf("error = %v", err)
	}
}

func TestFilterPEM(t *testing.T) {
	p := getPKI(t)
	key := keyPEM(t, p.leafKey)
	bundle := pemOf(p.leaf) + key + pemOf(p.inter)
	tests := []struct {
		name, blockType, in, want, wantErr string
	}{
		{"certificates of a bundle", "CERTIFICATE", bundle, pemOf(p.leaf, p.inter), ""},
		{"the key of a bundle", "PRIVATE KEY", bundle, key, ""},
		{"type compared without case", "certificate", bundle, pemOf(p.leaf, p.inter), ""},
		{"text before the first block", "PRIVATE KEY", "Bag Attributes\n  friendlyName: x\n" + key, key, ""},
		{"no block of the type is empty", "EC PRIVATE KEY", bundle, "", ""},
		{"empty value is empty", "CERTIFICATE", "", "", ""},
		{"no PEM at all", "CERTIFICATE", "junk", "", "no PEM block found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := filterPEM(tt.blockType, tt.in)
			if tt.wantErr != "" {
				wantSafe(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
