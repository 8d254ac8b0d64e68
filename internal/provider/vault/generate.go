package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keyferry/keyferry/internal/generator"
	"github.com/keyferry/keyferry/internal/provider"
)

var _ provider.Generator = vaultProvider{}

// Generate implements provider.Generator for ESO's VaultDynamicSecret: one
// request (spec.method on spec.path) with the server, TLS and auth of
// opts.Store's spec.provider.vault, logged in as a store's client is. The
// values are the answer's data (resultType Data), auth (Auth) or the whole
// answer (Raw); a string value is written as it is, any other as JSON.
//
// The login token is not revoked afterwards: Vault revokes the leases a
// token created with it, which would take the generated credentials (and a
// token made by auth/token/create) with it. It expires with its TTL.
func (p vaultProvider) Generate(ctx context.Context, opts provider.Options, req provider.GenerateRequest) (map[string][]byte, error) {
	g, ok := req.Spec.(*generator.VaultDynamicSecretSpec)
	if !ok {
		return nil, fmt.Errorf("%w: the vault provider makes no %s values", provider.ErrNotSupported, req.Kind)
	}
	c, err := p.NewClient(ctx, opts)
	if err != nil {
		return nil, err
	}
	cl, ok := c.(*client)
	if !ok {
		return nil, fmt.Errorf("%w: no vault client for a generator", provider.ErrInvalidConfig)
	}
	sec, err := cl.generate(ctx, g)
	if err != nil {
		return nil, err
	}
	out, err := dynamicValues(sec, g.ResultType)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 && !g.AllowEmptyResponse {
		return nil, fmt.Errorf("%w: %s %s: vault answered with no %s values (set allowEmptyResponse when none are expected)",
			provider.ErrBadResponse, g.Op(), cleanPath(g.Path), resultType(g.ResultType))
	}
	return out, nil
}

func cleanPath(p string) string { return strings.Trim(p, "/") }

func resultType(t string) string {
	if t == "" {
		return generator.VaultResultData
	}
	return t
}

// generate makes the one request of g with a valid token. When Vault
// refuses the token itself, the session logs in again and the request is
// made once more (the refused request made nothing).
func (c *client) generate(ctx context.Context, g *generator.VaultDynamicSecretSpec) (*vaultapi.Secret, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if err := c.session.ensure(ctx); err != nil {
		return nil, err
	}
	path := cleanPath(g.Path)
	op := g.Op() + " " + path
	var params map[string]any
	if g.Op() == generator.VaultWrite && len(g.Parameters) > 0 {
		if err := json.Unmarshal(g.Parameters, &params); err != nil {
			return nil, fmt.Errorf("%w: spec.parameters must be a JSON object", provider.ErrInvalidConfig)
		}
	}
	call := func() (*vaultapi.Secret, error) {
		l := c.api.Logical()
		switch g.Op() {
		case generator.VaultRead:
			return l.ReadWithDataWithContext(ctx, path, g.GetParameters)
		case generator.VaultList:
			return l.ListWithContext(ctx, path)
		case generator.VaultDelete:
			return l.DeleteWithContext(ctx, path)
		default:
			return l.WriteWithContext(ctx, path, params)
		}
	}
	used := c.session.current()
	sec, err := call()
	if isStatus(err, http.StatusForbidden) && c.session.canRefresh() && !c.tokenValid(ctx) {
		if rerr := c.session.refresh(ctx, used); rerr != nil {
			return nil, rerr
		}
		sec, err = call()
	}
	if err != nil {
		return nil, classify(op, nil, err, false)
	}
	return sec, nil
}

// dynamicValues picks the values of resultType out of Vault's answer.
func dynamicValues(sec *vaultapi.Secret, rt string) (map[string][]byte, error) {
	if sec == nil {
		return map[string][]byte{}, nil
	}
	var m map[string]any
	switch resultType(rt) {
	case generator.VaultResultAuth:
		if sec.Auth == nil {
			return map[string][]byte{}, nil
		}
		if err := roundTrip(sec.Auth, &m); err != nil {
			return nil, err
		}
	case generator.VaultResultRaw:
		if err := roundTrip(sec, &m); err != nil {
			return nil, err
		}
	default:
		m = sec.Data
	}
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		switch t := v.(type) {
		case string:
			out[k] = []byte(t)
		case nil:
			out[k] = []byte{}
		case json.Number:
			out[k] = []byte(t.String())
		default:
			b, err := json.Marshal(t)
			if err != nil {
				return nil, fmt.Errorf("%w: field %q of vault's answer cannot be encoded as JSON", provider.ErrBadResponse, k)
			}
			out[k] = b
		}
	}
	return out, nil
}

// roundTrip turns v into a JSON object map; the error never quotes v.
func roundTrip(v any, m *map[string]any) error {
	b, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(b, m)
	}
	if err != nil {
		return fmt.Errorf("%w: vault's answer cannot be read as a JSON object", provider.ErrBadResponse)
	}
	return nil
}
