package provider

import (
	"errors"
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// This file holds the helpers the providers share to parse the parameters
// of a SecretProviderClass (the `objects` or `secrets` YAML each provider
// reads). They are pure functions of user input: none of them panics, and
// none of their errors quotes more of the input than a line number.

// ClassParam describes one YAML parameter of a SecretProviderClass for
// ParseClassParam.
type ClassParam struct {
	// Name is the parameter as errors name it: "objects" or
	// "parameters.secrets".
	Name string
	// MaxLen bounds the parameter's length in bytes.
	MaxLen int
	// IfEmpty is the error message when the parameter is empty or blank.
	IfEmpty string
}

// ParseClassParam runs parse on the value s of parameter p after the checks
// every provider makes first: s is not blank and not longer than p.MaxLen.
// A panic in parse (the YAML decoder is not documented never to panic)
// becomes an error: user input must never crash the controller.
func ParseClassParam[T any](p ClassParam, s string, parse func(string) (T, error)) (out T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			out, err = zero, fmt.Errorf("%s is not valid YAML", p.Name)
		}
	}()
	if strings.TrimSpace(s) == "" {
		return out, errors.New(p.IfEmpty)
	}
	if len(s) > p.MaxLen {
		return out, fmt.Errorf("%s is larger than %d bytes", p.Name, p.MaxLen)
	}
	return parse(s)
}

// YAMLErrorLine keeps the position ("line N") of a YAML decoding error and
// drops the rest, which can quote the input; "syntax error" when the error
// has no position.
func YAMLErrorLine(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		end := i + len("line ")
		for end < len(msg) && msg[end] >= '0' && msg[end] <= '9' {
			end++
		}
		return msg[i:end]
	}
	return "syntax error"
}

// ResolveYAMLAlias follows an alias node to the node it names, at most 8
// aliases deep. It never returns nil: a nil node, or a chain of aliases
// too long, gives an empty node.
func ResolveYAMLAlias(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode && depth < 8; depth++ {
		n = n.Alias
	}
	if n == nil || n.Kind == yaml.AliasNode {
		return &yaml.Node{}
	}
	return n
}

// ValidClassFilePath accepts what the CSI driver writes under a volume: a
// relative path of at most 4096 bytes without empty, '.' or '..'
// segments, backslashes or NUL characters.
func ValidClassFilePath(p string) bool {
	if p == "" || len(p) > 4096 || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
