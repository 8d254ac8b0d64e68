package metricsauth

import "strings"

// bearerToken returns the token of an Authorization header value of the form
// "Bearer <token>". The scheme is case-insensitive, as the API server
// accepts it; exactly one space separates it from a non-empty token of
// visible ASCII characters. Anything else (another scheme, no token, spaces
// or control characters in the token) is rejected. The API server would
// read "Bearer a b" as the token "a"; this parser rejects it.
func bearerToken(header string) (string, bool) {
	const scheme = "bearer "
	h := strings.TrimSpace(header)
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	token := h[len(scheme):]
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c >= 0x7f {
			return "", false
		}
	}
	return token, true
}
