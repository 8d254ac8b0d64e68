package render

import (
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // RSA-OAEP with SHA-1 is what ESO's "SHA1" means.
	"crypto/sha256"
	"crypto/sha512"
	"hash"
)

var (
	errRSAScheme     error = safeError("the decryption scheme is not supported (None and RSA-OAEP are)")
	errRSANotRSAKey  error = safeError("the private key is not an RSA key")
	errRSADecryption error = safeError("the ciphertext cannot be decrypted with this key, scheme and hash")
)

// rsaDecrypt decrypts in (binary ciphertext) with a PEM RSA private key, as
// ESO's helper does: scheme "None" returns in unchanged; "RSA-OAEP" uses
// hash "SHA1", "SHA256" or "SHA512" (any other name means SHA-256) and no
// label. With a pipeline the key comes last:
// {{ .key | rsaDecrypt "RSA-OAEP" "SHA256" (.secret | b64dec) }}.
func rsaDecrypt(scheme, hashName, in, privateKey string) (string, error) {
	switch scheme {
	case "None":
		return in, nil
	case "RSA-OAEP":
	default:
		return "", errRSAScheme
	}
	if keyTooLarge(privateKey, false) {
		return "", errKeyTooLarge
	}
	k, err := parsePrivateKeyPEM(privateKey)
	if err != nil {
		return "", err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return "", errRSANotRSAKey
	}
	out, err := rsa.DecryptOAEP(oaepHash(hashName), nil, rk, []byte(in), nil)
	if err != nil {
		return "", errRSADecryption
	}
	return string(out), nil
}

func oaepHash(name string) hash.Hash {
	switch name {
	case "SHA1":
		return sha1.New()
	case "SHA512":
		return sha512.New()
	default:
		return sha256.New()
	}
}
