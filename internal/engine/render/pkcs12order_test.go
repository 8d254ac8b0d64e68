package render

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// explicit0 is [0] EXPLICIT around a DER element.
func explicit0(inner []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pbes2Alg is a PBES2 AlgorithmIdentifier: PBKDF2-HMAC-SHA256 with iter
// iterations, AES-256-CBC with iv.
func pbes2Alg(t *testing.T, salt []byte, iter *big.Int, iv []byte) []byte {
	t.Helper()
	oidHMACSHA256 := asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidAES256CBC := asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	type alg struct {
		OID    asn1.ObjectIdentifier
		Params asn1.RawValue
	}
	kdfParams := mustMarshal(t, struct {
		Salt       []byte
		Iterations *big.Int
		Prf        alg
	}{salt, iter, alg{oidHMACSHA256, asn1.NullRawValue}})
	params := mustMarshal(t, struct{ Kdf, Enc alg }{
		alg{oidPBKDF2, asn1.RawValue{FullBytes: kdfParams}},
		alg{oidAES256CBC, asn1.RawValue{FullBytes: mustMarshal(t, iv)}},
	})
	return mustMarshal(t, alg{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}, asn1.RawValue{FullBytes: params}})
}

// encryptedContent is a ContentInfo of type encryptedData holding bags,
// encrypted as go-pkcs12 decrypts it (PBES2, UTF-8 password, 2048
// iterations).
func encryptedContent(t *testing.T, password string, bags ...[]byte) []byte {
	t.Helper()
	var raws []asn1.RawValue
	for _, b := range bags {
		raws = append(raws, asn1.RawValue{FullBytes: b})
	}
	plain := mustMarshal(t, raws)
	salt, iv := make([]byte, 16), make([]byte, 16)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(iv)
	key, err := pbkdf2.Key(sha256.New, password, salt, 2048, 32)
	if err != nil {
		t.Fatal(err)
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	plain = append(plain, []byte(strings.Repeat(string(rune(pad)), pad))...)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	ct := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, plain)
	eci := mustMarshal(t, struct {
		Type asn1.ObjectIdentifier
		Alg  asn1.RawValue
		Data asn1.RawValue
	}{oidDataContent, asn1.RawValue{FullBytes: pbes2Alg(t, salt, big.NewInt(2048), iv)},
		asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: ct}})
	ed := mustMarshal(t, struct {
		Version int
		ECI     asn1.RawValue
	}{0, asn1.RawValue{FullBytes: eci}})
	return mustMarshal(t, struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue
	}{oidEncryptedContent, explicit0(ed)})
}

// hiddenKeyBag is a shrouded key bag asking for 2^31-1 PBKDF2 iterations:
// minutes of CPU for whoever decrypts it.
func hiddenKeyBag(t *testing.T) []byte {
	t.Helper()
	epki := mustMarshal(t, struct {
		Alg  asn1.RawValue
		Data []byte
	}{asn1.RawValue{FullBytes: pbes2Alg(t, []byte("saltsalt"), big.NewInt(1<<31-1), make([]byte, 16))}, make([]byte, 32)})
	return mustMarshal(t, struct {
		ID    asn1.ObjectIdentifier
		Value asn1.RawValue
	}{oidShroudedKeyBag, explicit0(epki)})
}

// certBag is a certificate bag.
func certBag(t *testing.T, c *x509.Certificate) []byte {
	t.Helper()
	inner := mustMarshal(t, struct {
		ID   asn1.ObjectIdentifier
		Data asn1.RawValue
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}, explicit0(mustMarshal(t, c.Raw))})
	return mustMarshal(t, struct {
		ID    asn1.ObjectIdentifier
		Value asn1.RawValue
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}, explicit0(inner)})
}

// contentsOf returns the ContentInfos of an archive's authenticated safe.
func contentsOf(t *testing.T, der []byte) []asn1.RawValue {
	t.Helper()
	var pfx p12PFX
	if _, err := asn1.Unmarshal(der, &pfx); err != nil {
		t.Fatal(err)
	}
	var octets asn1.RawValue
	if _, err := asn1.Unmarshal(pfx.AuthSafe.Content.Bytes, &octets); err != nil {
		t.Fatal(err)
	}
	var contents []asn1.RawValue
	if _, err := asn1.Unmarshal(octets.Bytes, &contents); err != nil {
		t.Fatal(err)
	}
	return contents
}

// archive assembles a PFX of contents with a MAC for password.
func archive(t *testing.T, password string, contents ...[]byte) string {
	t.Helper()
	var raws []asn1.RawValue
	for _, c := range contents {
		raws = append(raws, asn1.RawValue{FullBytes: c})
	}
	safe := mustMarshal(t, raws)
	bmp, err := bmpZeroTerminated(password)
	if err != nil {
		t.Fatal(err)
	}
	mac, err := newMAC(safe, bmp)
	if err != nil {
		t.Fatal(err)
	}
	authSafe := mustMarshal(t, struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue
	}{oidDataContent, explicit0(mustMarshal(t, safe))})
	return string(mustMarshal(t, struct {
		Version  int
		AuthSafe asn1.RawValue
		MacData  asn1.RawValue
	}{3, asn1.RawValue{FullBytes: authSafe}, asn1.RawValue{FullBytes: mac}}))
}

// TestPKCS12NeverDecryptsAHiddenKey: a key bag inside an encrypted content
// has a key-derivation count nobody can check before decrypting it. An
// archive that puts one first (here asking for 2^31-1 PBKDF2 iterations,
// minutes of CPU) fails at once instead of holding a render slot.
func TestPKCS12NeverDecryptsAHiddenKey(t *testing.T) {
	p := getPKI(t)
	legit, err := gopkcs12.Modern.Encode(p.leafKey, p.leaf, nil, "pw")
	if err != nil {
		t.Fatal(err)
	}
	plainKey := contentsOf(t, legit)[1] // go-pkcs12 writes [encrypted certificates, plain key]
	hidden := encryptedContent(t, "pw", hiddenKeyBag(t), certBag(t, p.leaf))
	tests := []struct {
		name    string
		pfx     string
		wantErr string
	}{
		{"hidden key before the visible one", archive(t, "pw", hidden, plainKey.FullBytes), "cannot be decoded"},
		{"hidden key only", archive(t, "pw", hidden), "no private key outside its encrypted contents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkPKCS12Work([]byte(tt.pfx)); err != nil {
				t.Fatalf("checkPKCS12Work = %v: the hidden count should be invisible to it", err)
			}
			start := time.Now()
			_, err := pkcs12keyPass("pw", tt.pfx)
			wantSafe(t, err, tt.wantErr)
			_, err = pkcs12certPass("pw", tt.pfx)
			wantSafe(t, err, tt.wantErr)
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("refusing took %v: the hidden key was decrypted", d)
			}
		})
	}
	// The same layout with an honest key decodes: the construction is sound.
	honest := archive(t, "pw", encryptedContent(t, "pw", certBag(t, p.leaf)), plainKey.FullBytes)
	if _, err := pkcs12keyPass("pw", honest); err != nil {
		t.Fatalf("an archive with encrypted certificates first and a plain key: %v", err)
	}
}

func TestVisibleKeyFirst(t *testing.T) {
	p := getPKI(t)
	modern, err := gopkcs12.Modern.Encode(p.leafKey, p.leaf, []*x509.Certificate{p.inter}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := gopkcs12.Legacy.Encode(p.leafKey, p.leaf, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	passwordless, err := gopkcs12.Passwordless.Encode(p.leafKey, p.leaf, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	trust, err := gopkcs12.Modern.EncodeTrustStore([]*x509.Certificate{p.root}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	// RFC 9579 appendix A.1: a PBMAC1 archive, password 1234.
	b, err := os.ReadFile("testdata/rfc9579-a1.txt")
	if err != nil {
		t.Fatal(err)
	}
	pbmac1, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		der       []byte
		pass      string
		reordered bool
		wantErr   string
	}{
		{"encrypted certificates first: reordered, new MAC", modern, "pw", true, ""},
		{"legacy archive, empty password", legacy, "", true, ""},
		{"PBMAC1 archive", pbmac1, "1234", true, ""},
		{"no encrypted content: unchanged", passwordless, "", false, ""},
		{"wrong password", modern, "nope", false, "cannot be decrypted with the given password"},
		{"wrong password, PBMAC1", pbmac1, "12345", false, "cannot be decrypted with the given password"},
		{"certificates only", trust, "pw", false, "no private key outside its encrypted contents"},
		{"not an archive", []byte("nope"), "", false, "not a PKCS#12 archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := visibleKeyFirst(tt.der, tt.pass)
			if tt.wantErr != "" {
				wantSafe(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if reordered := string(out) != string(tt.der); reordered != tt.reordered {
				t.Fatalf("reordered = %v, want %v", reordered, tt.reordered)
			}
			// go-pkcs12 accepts the result (its own MAC check included).
			if _, _, _, err := gopkcs12.DecodeChain(out, tt.pass); err != nil {
				t.Fatalf("decoding the result: %v", err)
			}
		})
	}
}
