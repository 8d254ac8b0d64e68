// Package ecrtoken reads the authorization tokens of Amazon ECR and ECR
// Public: standard base64 of "username:password", the credentials of a
// `docker login`. It is a package of its own, without I/O, so that its
// fuzz test runs without the aws provider's test servers.
package ecrtoken

import (
	"encoding/base64"
	"errors"
	"strings"
)

// Errors of Parse. They never hold the token or a part of it.
var (
	ErrNotBase64 = errors.New("not base64")
	ErrNotPair   = errors.New("not of the form username:password")
)

// Parse splits an ECR authorization token into its username and password,
// neither empty. The password may hold ':' (only the first one separates).
func Parse(token string) (user, password string, err error) {
	b, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return "", "", ErrNotBase64
	}
	user, password, ok := strings.Cut(string(b), ":")
	if !ok || user == "" || password == "" {
		return "", "", ErrNotPair
	}
	return user, password, nil
}
