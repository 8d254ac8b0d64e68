package render

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // PKCS#12 MACs use SHA-1; verifying one is not a choice.
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"hash"
	"unicode/utf16"
)

// A PKCS#12 archive's private key is usually a shrouded key bag in a plain
// ("data") content, where checkPKCS12Work sees its key-derivation count;
// certificates are usually in an encrypted content, whose bags it cannot
// see. go-pkcs12 decodes every bag in order and decrypts the first key bag
// it meets, so a key bag hidden in an encrypted content that comes first
// would be decrypted with a count nobody checked. visibleKeyFirst makes
// the archive's first key bag a visible one: it reorders the contents
// (plain ones first) when an encrypted one comes before the key, and
// refuses an archive whose only key bags could be hidden. go-pkcs12 then
// stops at a second key bag ("expected exactly one key bag") before
// decrypting it.
//
// The MAC covers the contents in their order, so a reordered archive gets
// a new MAC (HMAC-SHA-256, one derivation), computed only after the
// original MAC verified with the same password.

var errPKCS12HiddenKey error = safeError("the PKCS#12 archive has no private key outside its encrypted contents (a key there has a key-derivation cost that cannot be checked before decrypting it)")

var (
	oidDataContent      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedContent = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidKeyBag           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 1}
	oidShroudedKeyBag   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidMacSHA1          = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidMacSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidMacSHA512        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidPBMAC1           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidHMACSHA1         = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA256       = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA512       = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
)

type p12ContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type p12PFX struct {
	Version  int
	AuthSafe p12ContentInfo
	MacData  asn1.RawValue `asn1:"optional"`
}

type p12MacData struct {
	Mac struct {
		Algorithm pkix.AlgorithmIdentifier
		Digest    []byte
	}
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

// visibleKeyFirst returns the archive to decode: der itself when its first
// key bag is visible and no encrypted content comes before it, der with
// its plain contents first (and a new MAC) when one does, or an error.
func visibleKeyFirst(der []byte, pass string) ([]byte, error) {
	var pfx p12PFX
	if rest, err := asn1.Unmarshal(der, &pfx); err != nil || len(rest) != 0 || !pfx.AuthSafe.ContentType.Equal(oidDataContent) {
		return nil, errPKCS12Invalid
	}
	// The authenticated safe: [0] { OCTET STRING { SEQUENCE OF ContentInfo } }.
	var octets asn1.RawValue
	if rest, err := asn1.Unmarshal(pfx.AuthSafe.Content.Bytes, &octets); err != nil || len(rest) != 0 {
		return nil, errPKCS12Invalid
	}
	var contents []asn1.RawValue
	if rest, err := asn1.Unmarshal(octets.Bytes, &contents); err != nil || len(rest) != 0 {
		return nil, errPKCS12Invalid
	}
	var plain, encrypted []asn1.RawValue
	encryptedFirst, visibleKey := false, false
	for _, c := range contents {
		var ci p12ContentInfo
		if rest, err := asn1.Unmarshal(c.FullBytes, &ci); err != nil || len(rest) != 0 {
			return nil, errPKCS12Invalid
		}
		switch {
		case ci.ContentType.Equal(oidDataContent):
			plain = append(plain, c)
			if !visibleKey && holdsKeyBag(ci) {
				visibleKey = true
				encryptedFirst = len(encrypted) > 0
			}
		case ci.ContentType.Equal(oidEncryptedContent):
			encrypted = append(encrypted, c)
		default:
			return nil, errPKCS12Decode
		}
	}
	switch {
	case len(encrypted) == 0 || (visibleKey && !encryptedFirst):
		return der, nil
	case !visibleKey:
		return nil, errPKCS12HiddenKey
	}
	// Plain contents first; the MAC follows the new order.
	password, err := macPassword(pfx, octets.Bytes, pass)
	if err != nil {
		return nil, err
	}
	safe, err := asn1.Marshal(append(plain, encrypted...))
	if err != nil {
		return nil, errPKCS12Decode
	}
	octetString, err := asn1.Marshal(safe)
	if err != nil {
		return nil, errPKCS12Decode
	}
	// encoding/asn1 writes a RawValue as it is, so the [0] EXPLICIT
	// wrapper is spelled out.
	out := struct {
		Version  int
		AuthSafe struct {
			ContentType asn1.ObjectIdentifier
			Content     asn1.RawValue
		}
		MacData asn1.RawValue `asn1:"optional"`
	}{Version: pfx.Version}
	out.AuthSafe.ContentType = oidDataContent
	out.AuthSafe.Content = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: octetString}
	if len(pfx.MacData.FullBytes) > 0 {
		mac, err := newMAC(safe, password)
		if err != nil {
			return nil, err
		}
		out.MacData = asn1.RawValue{FullBytes: mac}
	}
	b, err := asn1.Marshal(out)
	if err != nil {
		return nil, errPKCS12Decode
	}
	return b, nil
}

// holdsKeyBag says whether a plain content holds a key bag (shrouded or
// not).
func holdsKeyBag(ci p12ContentInfo) bool {
	var octets asn1.RawValue
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &octets); err != nil {
		return false
	}
	var bags []asn1.RawValue
	if _, err := asn1.Unmarshal(octets.Bytes, &bags); err != nil {
		return false
	}
	for _, b := range bags {
		var id asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(b.Bytes, &id); err == nil && (id.Equal(oidKeyBag) || id.Equal(oidShroudedKeyBag)) {
			return true
		}
	}
	return false
}

// macPassword verifies the archive's MAC over the authenticated safe and
// returns the password encoding it verified with (PKCS#12's BMPString, or
// the empty string some tools use for no password), as go-pkcs12 decides
// it. An archive without a MAC must have no password.
func macPassword(pfx p12PFX, safe []byte, pass string) ([]byte, error) {
	password, err := bmpZeroTerminated(pass)
	if err != nil {
		return nil, errPKCS12Password
	}
	if len(pfx.MacData.FullBytes) == 0 {
		if pass != "" {
			return nil, errPKCS12Password
		}
		return password, nil
	}
	var md p12MacData
	if rest, err := asn1.Unmarshal(pfx.MacData.FullBytes, &md); err != nil || len(rest) != 0 {
		return nil, errPKCS12Invalid
	}
	ok, err := verifyMAC(md, safe, password, pass)
	if err != nil {
		return nil, err
	}
	if ok {
		return password, nil
	}
	if pass == "" {
		if ok, err := verifyMAC(md, safe, nil, pass); err == nil && ok {
			return nil, nil
		}
	}
	return nil, errPKCS12Password
}

func verifyMAC(md p12MacData, msg, password []byte, pass string) (bool, error) {
	alg := md.Mac.Algorithm.Algorithm
	if alg.Equal(oidPBMAC1) {
		sum, err := pbmac1(md.Mac.Algorithm, msg, []byte(pass))
		if err != nil {
			return false, err
		}
		return hmac.Equal(sum, md.Mac.Digest), nil
	}
	h, ok := macHashes[alg.String()]
	if !ok {
		return false, errPKCS12Decode
	}
	key := pkcs12MACKey(h.new, h.block, md.MacSalt, password, md.Iterations)
	m := hmac.New(h.new, key)
	m.Write(msg)
	return hmac.Equal(m.Sum(nil), md.Mac.Digest), nil
}

var macHashes = map[string]struct {
	new   func() hash.Hash
	block int
}{
	oidMacSHA1.String():   {sha1.New, 64},
	oidMacSHA256.String(): {sha256.New, 64},
	oidMacSHA512.String(): {sha512.New, 128},
}

// pkcs12MACKey derives a MAC key as RFC 7292 appendix B.2 does, for the
// one case a MAC needs: a key as long as the hash (ID 3, one block).
func pkcs12MACKey(newHash func() hash.Hash, v int, salt, password []byte, iterations int) []byte {
	fill := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		n := (len(b) + v - 1) / v * v
		out := make([]byte, n)
		for i := range out {
			out[i] = b[i%len(b)]
		}
		return out
	}
	h := newHash()
	h.Write(bytes.Repeat([]byte{3}, v))
	h.Write(fill(salt))
	h.Write(fill(password))
	a := h.Sum(nil)
	for i := 1; i < iterations; i++ {
		h.Reset()
		h.Write(a)
		a = h.Sum(a[:0])
	}
	return a
}

// pbmac1 computes an RFC 9579 PBMAC1 (PBKDF2, then HMAC) over msg with the
// UTF-8 password.
func pbmac1(alg pkix.AlgorithmIdentifier, msg, password []byte) ([]byte, error) {
	var params struct {
		Kdf    pkix.AlgorithmIdentifier
		MacAlg pkix.AlgorithmIdentifier
	}
	if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &params); err != nil || !params.Kdf.Algorithm.Equal(oidPBKDF2) {
		return nil, errPKCS12Decode
	}
	var kdf struct {
		Salt       asn1.RawValue
		Iterations int
		KeyLength  int                      `asn1:"optional"`
		Prf        pkix.AlgorithmIdentifier `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(params.Kdf.Parameters.FullBytes, &kdf); err != nil || kdf.KeyLength <= 0 || kdf.Iterations < 1 {
		return nil, errPKCS12Decode
	}
	prf, ok := hmacHashes(kdf.Prf.Algorithm)
	if !ok {
		return nil, errPKCS12Decode
	}
	mac, ok := hmacHashes(params.MacAlg.Algorithm)
	if !ok || len(params.MacAlg.Algorithm) == 0 {
		return nil, errPKCS12Decode
	}
	key, err := pbkdf2.Key(prf, string(password), kdf.Salt.Bytes, kdf.Iterations, kdf.KeyLength)
	if err != nil {
		return nil, errPKCS12Decode
	}
	m := hmac.New(mac, key)
	m.Write(msg)
	return m.Sum(nil), nil
}

// hmacHashes maps an HMAC algorithm to its hash (none means HMAC-SHA-1).
func hmacHashes(oid asn1.ObjectIdentifier) (func() hash.Hash, bool) {
	switch {
	case len(oid) == 0, oid.Equal(oidHMACSHA1):
		return sha1.New, true
	case oid.Equal(oidHMACSHA256):
		return sha256.New, true
	case oid.Equal(oidHMACSHA512):
		return sha512.New, true
	}
	return nil, false
}

// newMAC is the macData of a rebuilt archive: HMAC-SHA-256 over the
// authenticated safe with a key derived once from the password.
func newMAC(safe, password []byte) ([]byte, error) {
	var md p12MacData
	md.Mac.Algorithm = pkix.AlgorithmIdentifier{Algorithm: oidMacSHA256, Parameters: asn1.NullRawValue}
	md.MacSalt = make([]byte, 16)
	if _, err := rand.Read(md.MacSalt); err != nil {
		return nil, errPKCS12Decode
	}
	md.Iterations = 1
	m := hmac.New(sha256.New, pkcs12MACKey(sha256.New, 64, md.MacSalt, password, 1))
	m.Write(safe)
	md.Mac.Digest = m.Sum(nil)
	b, err := asn1.Marshal(md)
	if err != nil {
		return nil, errPKCS12Decode
	}
	return b, nil
}

// bmpZeroTerminated encodes a password as PKCS#12 does: UCS-2, big
// endian, with a zero terminator.
func bmpZeroTerminated(s string) ([]byte, error) {
	out := make([]byte, 0, 2*len(s)+2)
	for _, r := range s {
		if r1, _ := utf16.EncodeRune(r); r1 != 0xfffd {
			return nil, errors.New("the password has characters outside UCS-2")
		}
		out = append(out, byte(r>>8), byte(r))
	}
	return append(out, 0, 0), nil
}
