package azurekv

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/internal/provider"
)

func selfSignedBy(t *testing.T, key any) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyferry test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	var pub any
	switch k := key.(type) {
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	case ed25519.PrivateKey:
		pub = k.Public()
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatalf("creating a certificate: %v", err)
	}
	return der
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestContent(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaCert := selfSignedBy(t, rsaKey)
	ecCert := selfSignedBy(t, ecKey)
	pkcs8RSA, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	pkcs8EC, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	pkcs8Ed, _ := x509.MarshalPKCS8PrivateKey(edKey)
	sec1EC, _ := x509.MarshalECPrivateKey(ecKey)
	rsaPub, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	ecPub, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	b64 := base64.RawURLEncoding.EncodeToString
	rsaJWK, _ := json.Marshal(map[string]any{"kid": "https://kv/keys/k/1", "kty": "RSA-HSM", "n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes()), "key_ops": []string{"sign"}})
	ecJWK, _ := json.Marshal(map[string]any{"kty": "EC", "crv": "P-384", "x": b64(ecKey.X.Bytes()), "y": b64(ecKey.Y.Bytes())})
	// A Key Vault managed certificate secret: key first, then the chain.
	bundle := append(pemOf("PRIVATE KEY", pkcs8RSA), pemOf("CERTIFICATE", rsaCert)...)
	chain := append(append(pemOf("CERTIFICATE", rsaCert), pemOf("CERTIFICATE", ecCert)...), pemOf("EC PRIVATE KEY", sec1EC)...)

	tests := []struct {
		name    string
		f       classFile
		part    string
		raw     []byte
		want    []byte
		wantErr string
	}{
		{name: "secret as it is", f: classFile{obj: SPCObject{Type: "secret", Name: "s"}, index: -1}, raw: []byte("Hello!"), want: []byte("Hello!")},
		{name: "secret utf-8", f: classFile{obj: SPCObject{Type: "secret", Name: "s", Encoding: "utf-8"}, index: -1}, raw: []byte("héllo"), want: []byte("héllo")},
		{name: "secret base64", f: classFile{obj: SPCObject{Type: "secret", Name: "s", Encoding: "base64"}, index: -1}, raw: []byte("AAEC/w==\n"), want: []byte{0, 1, 2, 255}},
		{name: "secret hex", f: classFile{obj: SPCObject{Type: "secret", Name: "s", Encoding: "hex"}, index: -1}, raw: []byte("0001ff"), want: []byte{0, 1, 255}},
		{name: "secret not base64", f: classFile{obj: SPCObject{Type: "secret", Name: "s", Encoding: "base64"}, index: -1}, raw: []byte("not base64!"), wantErr: "is not base64"},
		{name: "secret not hex", f: classFile{obj: SPCObject{Type: "secret", Name: "s", Encoding: "hex"}, index: -1}, raw: []byte("xyz"), wantErr: "is not hexadecimal"},
		{name: "certificate as PEM", f: classFile{obj: SPCObject{Type: "cert", Name: "c"}, index: -1}, raw: rsaCert, want: pemOf("CERTIFICATE", rsaCert)},
		{name: "certificate not DER", f: classFile{obj: SPCObject{Type: "cert", Name: "c"}, index: -1}, raw: []byte("nope"), wantErr: "not DER-encoded"},
		{name: "RSA key as PKIX PEM", f: classFile{obj: SPCObject{Type: "key", Name: "k"}, index: -1}, raw: rsaJWK, want: pemOf("PUBLIC KEY", rsaPub)},
		{name: "EC key as PKIX PEM", f: classFile{obj: SPCObject{Type: "key", Name: "k"}, index: -1}, raw: ecJWK, want: pemOf("PUBLIC KEY", ecPub)},
		{name: "symmetric key", f: classFile{obj: SPCObject{Type: "key", Name: "k"}, index: -1}, raw: []byte(`{"kty":"oct"}`), wantErr: `keys of type "oct" have no public key`},
		{name: "EC point off the curve", f: classFile{obj: SPCObject{Type: "key", Name: "k"}, index: -1}, raw: []byte(`{"kty":"EC","crv":"P-256","x":"AQ","y":"Ag"}`), wantErr: "is not on curve"},
		{name: "key not JSON", f: classFile{obj: SPCObject{Type: "key", Name: "k"}, index: -1}, raw: []byte("{"), wantErr: "is not a JSON Web Key"},
		{name: "tls.crt of a bundle", f: classFile{obj: SPCObject{Type: "secret", Name: "s"}, index: -1}, part: partCert, raw: bundle, want: pemOf("CERTIFICATE", rsaCert)},
		{name: "tls.key of a bundle: PKCS#8 RSA becomes PKCS#1", f: classFile{obj: SPCObject{Type: "secret", Name: "s"}, index: -1}, part: partKey, raw: bundle, want: pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))},
		{name: "tls.crt keeps the chain", f: classFile{obj: SPCObject{Type: "secret", Name: "s"}, index: -1}, part: partCert, raw: chain, want: append(pemOf("CERTIFICATE", rsaCert), pemOf("CERTIFICATE", ecCert)...)},
		{name: "tls.key SEC 1 EC", f: classFile{obj: SPCObject{Type: "secret", Name: "s"}, index: -1}, part: partKey, raw: chain, want: pemOf("EC PRIVATE KEY", sec1EC)},
		{name: "tls.key PKCS#8 EC becomes SEC 1", f: classFile{obj: SPCObject{Type: "secret", Name: "s"}, index: -1}, part: partKey, raw: pemOf("PRIVATE KEY", pkcs8EC), want: pemOf("EC PRIVATE KEY", sec1EC)},
		{name: "tls.key Ed25519 stays PKCS#8", f: classFile{obj: SPCObject{Type: "secret", Name: "s"}, index: -1}, part: partKey, raw: pemOf("PRIVATE KEY", pkcs8Ed), want: pemOf("PRIVATE KEY", pkcs8Ed)},
		{name: "tls.key without a key", f: classFile{obj: SPCObject{Type: "secret", Name: "s"}, index: -1}, part: partKey, raw: pemOf("CERTIFICATE", rsaCert), wantErr: "no private key found"},
		{name: "tls.crt of text", f: classFile{obj: SPCObject{Type: "secret", Name: "s"}, index: -1}, part: partCert, raw: []byte("Hello!"), wantErr: "no certificate found"},
		{name: "tls.crt of a certificate object", f: classFile{obj: SPCObject{Type: "cert", Name: "c"}, index: -1}, part: partCert, raw: rsaCert, want: pemOf("CERTIFICATE", rsaCert)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := content(tt.f, tt.part, tt.raw)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("content succeeded; want an error containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				if !errors.Is(err, provider.ErrBadResponse) {
					t.Fatalf("error %q does not wrap ErrBadResponse", err)
				}
				if bytes.Contains([]byte(err.Error()), tt.raw) && len(tt.raw) > 3 {
					t.Fatalf("error %q quotes the value", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("content: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("content = %q, want %q", got, tt.want)
			}
		})
	}
}
