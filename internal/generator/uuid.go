package generator

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// UUIDKey is the key of the UUID generator's output, as in ESO.
const UUIDKey = "uuid"

// UUID returns a new random UUID (RFC 9562 version 4, lower-case canonical
// form such as "9b2f0c51-6a0e-4c7d-8f3b-2d1e5a7c9b40") under the key "uuid".
func UUID() (map[string][]byte, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant 10 (RFC 9562)
	out := make([]byte, 36)
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return map[string][]byte{UUIDKey: out}, nil
}
