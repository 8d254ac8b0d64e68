package provider

import (
	"encoding/pem"
	"fmt"
	"strings"
)

// PEMCertificates returns the CERTIFICATE blocks of a PEM file, in order,
// as a SecretSync of type kubernetes.io/tls takes them into tls.crt. It
// fails, wrapping ErrBadResponse, when the file holds none; the error never
// quotes the file.
func PEMCertificates(b []byte) ([]byte, error) {
	out := pemBlocks(b, func(t string) bool { return t == "CERTIFICATE" }, false)
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no PEM CERTIFICATE block for tls.crt", ErrBadResponse)
	}
	return out, nil
}

// PEMPrivateKey returns the first "... PRIVATE KEY" block of a PEM file, as
// it is, as a SecretSync of type kubernetes.io/tls takes it into tls.key. It
// fails, wrapping ErrBadResponse, when the file holds none; the error never
// quotes the file.
func PEMPrivateKey(b []byte) ([]byte, error) {
	out := pemBlocks(b, func(t string) bool { return strings.HasSuffix(t, "PRIVATE KEY") }, true)
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no PEM PRIVATE KEY block for tls.key", ErrBadResponse)
	}
	return out, nil
}

// pemBlocks re-encodes the blocks of b whose type keep accepts (without
// their headers); first stops at the first one.
func pemBlocks(b []byte, keep func(string) bool, first bool) []byte {
	var out []byte
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return out
		}
		if keep(blk.Type) {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: blk.Type, Bytes: blk.Bytes})...)
			if first {
				return out
			}
		}
	}
}
