package render

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// ESO's PKCS#12 helpers. Archives are read as binary (DER): a base64
// value is decoded first with b64dec or decodingStrategy: Base64, as in
// ESO. Archives are written with go-pkcs12's Modern encoder (AES-256,
// PBKDF2-SHA256) and returned in base64, as ESO's helpers do.

// maxPKCS12 bounds the archive a template may read. A key in an archive is
// parsed (and its arithmetic checked) before anything else can look at it,
// so the archive's size bounds that work; real archives (an 8192-bit key
// and a chain of tens of certificates) are a few KiB.
const maxPKCS12 = 128 << 10

// maxPKCS12Iterations bounds the key-derivation iterations an archive may
// ask for, summed over every derivation visible before decryption (the
// MAC, each encrypted content, each shrouded key bag in a plain content).
// OpenSSL and Windows use 2,048 per derivation and Java 10,000; each
// iteration is a hash that cannot be interrupted, so an archive asking for
// 2^31 would hold a render slot for minutes. Key bags inside encrypted
// contents are never decrypted (see visibleKeyFirst).
const maxPKCS12Iterations = 1_000_000

var (
	errPKCS12TooLarge  error = safeError("the PKCS#12 archive is larger than 128 KiB")
	errPKCS12Work      error = safeError("the PKCS#12 archive asks for more than 1,000,000 key-derivation iterations")
	errPKCS12Invalid   error = safeError("the value is not a PKCS#12 archive (DER; decode base64 with b64dec first)")
	errPKCS12Password  error = safeError("the PKCS#12 archive cannot be decrypted with the given password")
	errPKCS12Decode    error = safeError("the PKCS#12 archive cannot be decoded (unsupported algorithm or more than one key)")
	errPKCS12NoKey     error = safeError("the PKCS#12 archive holds no private key")
	errPKCS12NoCert    error = safeError("the PKCS#12 archive holds no certificate")
	errPKCS12Encode    error = safeError("cannot encode the PKCS#12 archive")
	errNoCertPEM       error = safeError("no PEM certificate found")
	errNotCertificate  error = safeError("a PEM block is not a valid X.509 certificate")
	errNoKeyPEM        error = safeError("no PEM private key found")
	errPrivateKey      error = safeError("the private key cannot be parsed (PKCS#1, PKCS#8 or SEC 1 expected)")
	errKeyMarshal      error = safeError("the private key cannot be encoded as PKCS#8")
	errTooManyCerts    error = safeError("more than 1000 certificates")
	errKeyDoesNotMatch error = safeError("the private key does not match the certificate")
)

func pkcs12key(input string) (string, error) { return pkcs12keyPass("", input) }

// pkcs12keyPass returns the private key of an archive as a PKCS#8 PEM
// block ("PRIVATE KEY").
func pkcs12keyPass(pass, input string) (string, error) {
	key, _, _, err := decodePKCS12(pass, input)
	if err != nil {
		return "", err
	}
	if key == nil {
		return "", errPKCS12NoKey
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", errKeyMarshal
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: pemTypePrivateKey, Bytes: der})), nil
}

func pkcs12cert(input string) (string, error) { return pkcs12certPass("", input) }

// pkcs12certPass returns the certificates of an archive in PEM, ordered
// leaf, intermediates, root when they form one chain, and in the
// archive's order (leaf first) when they do not.
func pkcs12certPass(pass, input string) (string, error) {
	_, leaf, cas, err := decodePKCS12(pass, input)
	if err != nil {
		return "", err
	}
	if leaf == nil {
		return "", errPKCS12NoCert
	}
	certs := append([]*x509.Certificate{leaf}, cas...)
	if ordered, err := orderChain(certs); err == nil {
		certs = ordered
	}
	return encodeCerts(certs), nil
}

// DecodePKCS12 decodes a PKCS#12 archive (DER) within the bounds the
// template helpers keep: at most 128 KiB, at most 1,000,000 key-derivation
// iterations in all, and no private key hidden where its cost cannot be
// checked before decrypting it. Its errors are fixed text, never a value.
// Providers that decode archives they did not write (a Key Vault
// certificate, a Secret a tenant pushes) use it, so one archive cannot hold
// the operator for minutes.
func DecodePKCS12(der []byte, pass string) (key any, leaf *x509.Certificate, cas []*x509.Certificate, err error) {
	return decodePKCS12(pass, string(der))
}

// decodePKCS12 checks an archive's size and key-derivation work, then
// decodes it. Its errors are fixed text.
func decodePKCS12(pass, input string) (key any, leaf *x509.Certificate, cas []*x509.Certificate, err error) {
	if len(input) > maxPKCS12 {
		return nil, nil, nil, errPKCS12TooLarge
	}
	der := []byte(input)
	if err := checkPKCS12Work(der); err != nil {
		return nil, nil, nil, err
	}
	if der, err = visibleKeyFirst(der, pass); err != nil {
		return nil, nil, nil, err
	}
	key, leaf, cas, err = gopkcs12.DecodeChain(der, pass)
	switch {
	case err == nil:
		return key, leaf, cas, nil
	case errors.Is(err, gopkcs12.ErrIncorrectPassword), errors.Is(err, gopkcs12.ErrDecryption):
		return nil, nil, nil, errPKCS12Password
	default:
		return nil, nil, nil, errPKCS12Decode
	}
}

func pemToPkcs12(cert, key string) (string, error) { return pemToPkcs12Pass(cert, key, "") }

// pemToPkcs12Pass builds an archive of the first certificate of cert and
// the first private key of key, encrypted with pass.
func pemToPkcs12Pass(cert, key, pass string) (string, error) {
	certs, err := parseCertsPEM(cert)
	if err != nil {
		return "", err
	}
	return certsKeyToPKCS12(certs[0], nil, key, pass)
}

func fullPemToPkcs12(cert, key string) (string, error) { return fullPemToPkcs12Pass(cert, key, "") }

// fullPemToPkcs12Pass builds an archive of the first certificate of cert,
// the certificates after it as its chain, and the first private key of
// key, encrypted with pass.
func fullPemToPkcs12Pass(cert, key, pass string) (string, error) {
	certs, err := parseCertsPEM(cert)
	if err != nil {
		return "", err
	}
	return certsKeyToPKCS12(certs[0], certs[1:], key, pass)
}

func certsKeyToPKCS12(leaf *x509.Certificate, cas []*x509.Certificate, key, pass string) (string, error) {
	if keyTooLarge(key, false) {
		return "", errKeyTooLarge
	}
	k, err := parsePrivateKeyPEM(key)
	if err != nil {
		return "", err
	}
	// A keystore whose key is not the certificate's is never usable;
	// refuse it rather than write it.
	if s, ok := k.(crypto.Signer); !ok || !publicKeysEqual(s.Public(), leaf.PublicKey) {
		return "", errKeyDoesNotMatch
	}
	pfx, err := gopkcs12.Modern.Encode(k, leaf, cas, pass)
	if err != nil {
		return "", errPKCS12Encode
	}
	return base64.StdEncoding.EncodeToString(pfx), nil
}

func pemTruststoreToPKCS12(cert string) (string, error) { return pemTruststoreToPKCS12Pass(cert, "") }

// pemTruststoreToPKCS12Pass builds a trust store archive (certificates
// only, as Java reads them) of every certificate of cert.
func pemTruststoreToPKCS12Pass(cert, pass string) (string, error) {
	certs, err := parseCertsPEM(cert)
	if err != nil {
		return "", err
	}
	pfx, err := gopkcs12.Modern.EncodeTrustStore(certs, pass)
	if err != nil {
		return "", errPKCS12Encode
	}
	return base64.StdEncoding.EncodeToString(pfx), nil
}

// parseCertsPEM parses every PEM block of s as a certificate; there must be
// at least one and at most maxChain.
func parseCertsPEM(s string) ([]*x509.Certificate, error) {
	rest := []byte(s)
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if len(certs) == maxChain {
			return nil, errTooManyCerts
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, errNotCertificate
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errNoCertPEM
	}
	return certs, nil
}

// parsePrivateKeyPEM parses the first PEM block of s as a PKCS#1, PKCS#8 or
// SEC 1 private key, as ESO does.
func parsePrivateKeyPEM(s string) (any, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, errNoKeyPEM
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	return nil, errPrivateKey
}

// OIDs of the key derivations a PKCS#12 archive may ask for.
var (
	oidPKCS12PBE = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1} // pbeWithSHAAnd...: arc
	oidPBKDF2    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
)

// maxDERDepth bounds how deeply checkPKCS12Work descends into nested DER.
const maxDERDepth = 24

// checkPKCS12Work sums the iterations of every key derivation visible in an
// archive before decryption and refuses more than maxPKCS12Iterations:
// the MAC's (PFX macData), and those of every PKCS#12 PBE and PBKDF2
// algorithm identifier found anywhere in the DER, including inside OCTET
// STRINGs that hold DER (the authenticated safe and its bags). A legacy
// PBE derives a key and an IV, so its iterations count twice. What an
// encrypted content holds is not visible until it is decrypted.
func checkPKCS12Work(der []byte) error {
	var pfx struct {
		Version  int
		AuthSafe asn1.RawValue
		MacData  asn1.RawValue `asn1:"optional"`
	}
	if rest, err := asn1.Unmarshal(der, &pfx); err != nil || len(rest) != 0 {
		return errPKCS12Invalid
	}
	total := 0
	add := func(n int) bool {
		total += n
		return total <= maxPKCS12Iterations
	}
	if len(pfx.MacData.FullBytes) > 0 {
		var mac struct {
			Mac        asn1.RawValue
			Salt       []byte
			Iterations *big.Int `asn1:"optional"`
		}
		if _, err := asn1.Unmarshal(pfx.MacData.FullBytes, &mac); err != nil {
			return errPKCS12Invalid
		}
		n := 1
		if mac.Iterations != nil {
			if !mac.Iterations.IsInt64() || mac.Iterations.Int64() < 1 || mac.Iterations.Int64() > maxPKCS12Iterations {
				return errPKCS12Work
			}
			n = int(mac.Iterations.Int64())
		}
		if !add(n) {
			return errPKCS12Work
		}
	}
	if !walkDER(der, 0, add) {
		return errPKCS12Work
	}
	return nil
}

// walkDER visits the elements of der (a sequence of DER elements) and
// calls add with the iterations of every key derivation it finds. It
// returns false once add does or an iteration count is out of range.
// Malformed DER ends the walk quietly: the decoder reports it.
func walkDER(der []byte, depth int, add func(int) bool) bool {
	if depth > maxDERDepth {
		return true
	}
	for len(der) > 0 {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(der, &v)
		if err != nil {
			return true
		}
		der = rest
		switch {
		case v.Class == asn1.ClassUniversal && v.Tag == asn1.TagSequence && v.IsCompound:
			if n, ok := derivationIterations(v.Bytes); ok {
				if n < 1 || !add(n) {
					return false
				}
			}
			if !walkDER(v.Bytes, depth+1, add) {
				return false
			}
		case v.IsCompound:
			if !walkDER(v.Bytes, depth+1, add) {
				return false
			}
		case v.Class == asn1.ClassUniversal && v.Tag == asn1.TagOctetString:
			// An OCTET STRING may hold DER (authenticated safe,
			// safe contents, bag values).
			if !walkDER(v.Bytes, depth+1, add) {
				return false
			}
		}
	}
	return true
}

// derivationIterations reads an AlgorithmIdentifier's content (an OID and
// its parameters) and, for a PKCS#12 PBE or PBKDF2, returns the iterations
// it asks for: twice a PBE's (a key and an IV are derived), -1 when the
// count is not a small positive integer.
func derivationIterations(seq []byte) (int, bool) {
	var oid asn1.ObjectIdentifier
	params, err := asn1.Unmarshal(seq, &oid)
	if err != nil {
		return 0, false
	}
	factor := 0
	switch {
	case oid.Equal(oidPBKDF2):
		factor = 1
	case len(oid) == len(oidPKCS12PBE)+1 && oid[:len(oidPKCS12PBE)].Equal(oidPKCS12PBE):
		factor = 2
	default:
		return 0, false
	}
	// Both parameter structures start with a salt (PBKDF2's is a CHOICE,
	// in practice an OCTET STRING) followed by the iteration count.
	n, ok := secondInteger(params)
	if !ok || !n.IsInt64() || n.Int64() < 1 || n.Int64() > maxPKCS12Iterations {
		return -1, true
	}
	return factor * int(n.Int64()), true
}

// secondInteger returns the second element of a DER SEQUENCE as an
// integer.
func secondInteger(params []byte) (*big.Int, bool) {
	var seq asn1.RawValue
	if _, err := asn1.Unmarshal(params, &seq); err != nil || !seq.IsCompound {
		return nil, false
	}
	var salt asn1.RawValue
	rest, err := asn1.Unmarshal(seq.Bytes, &salt)
	if err != nil {
		return nil, false
	}
	var n *big.Int
	if _, err := asn1.Unmarshal(rest, &n); err != nil || n == nil {
		return nil, false
	}
	return n, true
}

// publicKeysEqual compares two public keys of the types crypto/x509 parses.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
