// This file makes the values of ESO's Webhook generator: one request built
// from the in-memory store the engine makes of the generator's spec, with
// every rule of a webhook store's client (templates, secrets in the
// generator's namespace with the external-secrets.io/type=webhook label,
// network and TLS rules, no credentials over plain http).

package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"

	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/provider"
)

var _ provider.Generator = &Provider{}

// generatorKey names the request in messages, where a store's client names
// the remote key.
const generatorKey = "the Webhook generator"

// Generate implements provider.Generator for ESO's Webhook generator. It
// builds a client of opts.Store (the generator's fields as
// spec.provider.webhook) exactly as NewClient does for a store, sends one
// request and closes the client: nothing is cached or shared.
//
// As in ESO, the response is JSON; result.jsonPath, when set, selects a
// part of it; a selected JSON string is parsed as JSON again; the outcome
// must be a JSON object, whose members are the generated keys. A string
// member is its value as it is, a number or boolean its JSON text, null
// an empty value, an object or array its JSON encoding.
func (p *Provider) Generate(ctx context.Context, opts provider.Options, req provider.GenerateRequest) (map[string][]byte, error) {
	if _, ok := req.Spec.(*genv1alpha1.WebhookSpec); !ok {
		return nil, fmt.Errorf("%w: the webhook provider makes no %s values", provider.ErrNotSupported, req.Kind)
	}
	pc, err := p.NewClient(ctx, opts)
	if err != nil {
		return nil, err
	}
	c, ok := pc.(*Client)
	if !ok {
		return nil, fmt.Errorf("%w: no webhook client for a generator", provider.ErrInvalidConfig)
	}
	defer func() { _ = c.Close(ctx) }()
	return c.generate(ctx)
}

// generate sends the generator's one request and reads its keys.
func (c *Client) generate(ctx context.Context) (map[string][]byte, error) {
	req, jp, err := c.request(ctx, provider.Ref{})
	if err != nil {
		return nil, fmt.Errorf("calling %s: %w", generatorKey, err)
	}
	body, err := c.do(ctx, req, generatorKey)
	if err != nil {
		return nil, err
	}
	if !gjson.ValidBytes(body) {
		return nil, fmt.Errorf("%w: the webhook's response is not JSON; the Webhook generator needs a JSON object", provider.ErrBadResponse)
	}
	sel := gjson.ParseBytes(body)
	if jp != nil {
		nodes := jp.eval(sel)
		switch len(nodes) {
		case 0:
			return nil, fmt.Errorf("%w: result.jsonPath %s matched nothing in the webhook's response", provider.ErrBadResponse, c.redactor.redact(jp.src))
		case 1:
			sel = nodes[0]
		default:
			return nil, fmt.Errorf("%w: result.jsonPath %s matched %d values in the webhook's response; the Webhook generator needs one JSON object", provider.ErrBadResponse, c.redactor.redact(jp.src), len(nodes))
		}
	}
	return generatedKeys(sel)
}

// generatedKeys turns the selected JSON into keys. A JSON string holding
// JSON is read as that JSON (ESO's rule). Errors name the JSON type found,
// never a value.
func generatedKeys(sel gjson.Result) (map[string][]byte, error) {
	if sel.Type == gjson.String {
		if !gjson.Valid(sel.Str) {
			return nil, fmt.Errorf("%w: the webhook's response selects a string that is not JSON; the Webhook generator needs a JSON object", provider.ErrBadResponse)
		}
		sel = gjson.Parse(sel.Str)
	}
	if !sel.IsObject() {
		return nil, fmt.Errorf("%w: the webhook's response selects a JSON %s; the Webhook generator needs a JSON object", provider.ErrBadResponse, jsonType(sel))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(sel.Raw), &m); err != nil {
		return nil, fmt.Errorf("%w: the webhook's response cannot be read as a JSON object", provider.ErrBadResponse)
	}
	out := make(map[string][]byte, len(m))
	for k, raw := range m {
		v, err := generatedValue(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: a member of the webhook's response cannot be encoded", provider.ErrBadResponse)
		}
		out[k] = v
	}
	return out, nil
}

// generatedValue is the value of one member: as ESO writes it.
func generatedValue(raw json.RawMessage) ([]byte, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	switch t := v.(type) {
	case string:
		return []byte(t), nil
	case float64:
		return []byte(strconv.FormatFloat(t, 'f', -1, 64)), nil
	case bool:
		return []byte(strconv.FormatBool(t)), nil
	case nil:
		return []byte{}, nil
	default:
		return json.Marshal(t)
	}
}

// jsonType names r's JSON type for messages.
func jsonType(r gjson.Result) string {
	switch {
	case r.IsArray():
		return "array"
	case r.Type == gjson.Number:
		return "number"
	case r.Type == gjson.True, r.Type == gjson.False:
		return "boolean"
	case r.Type == gjson.Null:
		return "null"
	case r.Type == gjson.String:
		return "string"
	default:
		return "value"
	}
}
