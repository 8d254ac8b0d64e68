// This file is the write side of the webhook provider (PushSecret), with
// ESO's meaning of a push to a webhook:
//
//   - A push sends the store's method (POST when the store sets none) to
//     the store's url, with its headers and body. The templates see
//     .remoteRef.remoteKey, .remoteRef.secretKey and the pushed value as
//     .remoteRef.<remoteKey> (index .remoteRef .remoteRef.remoteKey), and
//     the Secrets listed in `secrets`; in the url every remoteRef value is
//     URL-escaped. Without a body template the body is the value itself.
//     The value is one key of the source Secret, or the whole Secret as a
//     JSON object of strings (as ESO).
//   - Delete sends DELETE to the url rendered for the remote key (no body,
//     as ESO); a 404 counts as deleted.
//   - Inspect is ESO's existence check: the store's read request for the
//     remote key (.remoteRef.key), where a 404 says "absent" and a 2xx
//     "exists".
//
// What keyferry does differently, and why:
//
//   - A webhook has no mark of who created a record. keyferry cannot tell
//     one it pushed from one that was there, so Inspect reports every
//     record it finds as keyferry's: the store's push templates are the
//     opt-in (a store written for reads does not render for a push, which
//     has no .remoteRef.key). docs/providers/webhook.md says so.
//   - The existence check never writes: ESO sends it with the store's
//     method, so a store with method POST or PUT would push an empty value
//     to check; keyferry sends GET (HEAD for a HEAD store) then, without the
//     body.
//   - remoteRef.property is refused (ESO ignores it: a push "to a
//     property" would replace the whole record), so are remote keys that
//     would hide .remoteRef.remoteKey or .remoteRef.secretKey (ESO puts the
//     value in their place), and .remoteRef.secretKey is always defined
//     ("" for a whole Secret, and in a delete).
//   - A push goes over plain http:// only where the operator allows
//     credentials to (--allow-insecure-http, or a loopback address): the
//     value is a secret even when the store sends no credential.
//   - Rendered push templates are bounded (MaxPushTemplateBytes each), the
//     response is never read beyond draining, and the pushed value is
//     scrubbed from every message; a failed push names the remote key and
//     the HTTP status, never the request.
//
// There is no check-and-set: an HTTP service has no version keyferry can
// hold a write to.

package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/keyferry/keyferry/internal/provider"
)

var _ provider.Pusher = (*Client)(nil)

// MaxPushTemplateBytes bounds each rendered template of a push, an
// existence check or a delete (the url, the body, each header). A Secret
// holds at most 1 MiB; escaping may grow it.
const MaxPushTemplateBytes = 4 << 20

// The names in .remoteRef a push defines besides the value.
const (
	pushVarRemoteKey = "remoteKey"
	pushVarSecretKey = "secretKey"
)

// pushRefCheck is one rule a remote ref must pass before anything is sent;
// it returns an error wrapping provider.ErrInvalidPush.
type pushRefCheck func(ref provider.PushRef) error

// pushRefChecks are the rules, in order.
var pushRefChecks = []pushRefCheck{
	remoteKeyIsSet,
	noProperty,
	remoteKeyHidesNoVariable,
}

// checkPushRef runs pushRefChecks; the first failure stops it.
func checkPushRef(ref provider.PushRef) error {
	for _, check := range pushRefChecks {
		if err := check(ref); err != nil {
			return err
		}
	}
	return nil
}

// remoteKeyIsSet: ESO refuses a push without remoteKey ("remote key must be
// defined"); the templates name the value by it.
func remoteKeyIsSet(ref provider.PushRef) error {
	if ref.RemoteKey == "" {
		return fmt.Errorf("%w: remoteRef.remoteKey must be set for a webhook store", provider.ErrInvalidPush)
	}
	return nil
}

// noProperty: a webhook record has no properties. ESO ignores the field
// and sends the value as if it were not set, which would replace the whole
// record; keyferry refuses it.
func noProperty(ref provider.PushRef) error {
	if ref.Property != "" {
		return fmt.Errorf("%w: remote %s: a webhook store has no properties (ESO ignores remoteRef.property and would replace the whole record); remove remoteRef.property", provider.ErrInvalidPush, ref)
	}
	return nil
}

// remoteKeyHidesNoVariable: the value is .remoteRef.<remoteKey>, so a
// remote key "remoteKey" or "secretKey" would replace that variable with
// the value (ESO does), and put the value wherever a template uses it,
// the url included.
func remoteKeyHidesNoVariable(ref provider.PushRef) error {
	if ref.RemoteKey == pushVarRemoteKey || ref.RemoteKey == pushVarSecretKey {
		return fmt.Errorf("%w: remoteRef.remoteKey %q is the name of a template variable (.remoteRef.%s), which the pushed value would replace; choose another remoteKey", provider.ErrInvalidPush, ref.RemoteKey, ref.RemoteKey)
	}
	return nil
}

// pushTemplateData is what the templates of a push (value set) or a delete
// (value nil) see:
//
//	.remoteRef.remoteKey, .remoteRef.secretKey ("" for a whole Secret or a delete)
//	.remoteRef.<remoteKey>   the pushed value (push only)
//	.secrets.NAME.KEY, .NAME.KEY   the Secrets listed in `secrets`
//
// With escape set (the url), the remoteRef values are URL-escaped.
func pushTemplateData(remoteKey, secretKey string, value []byte, secrets map[string]map[string]string, escape bool) map[string]any {
	enc := func(s string) string { return s }
	if escape {
		enc = escapeURLValue
	}
	ref := map[string]string{
		pushVarRemoteKey: enc(remoteKey),
		pushVarSecretKey: enc(secretKey),
	}
	if value != nil {
		ref[remoteKey] = enc(string(value))
		// index .remoteRef .remoteRef.remoteKey finds the value in the
		// url too, where .remoteRef.remoteKey is escaped.
		ref[enc(remoteKey)] = enc(string(value))
	}
	data := map[string]any{"remoteRef": ref}
	addSecrets(data, secrets)
	return data
}

// existsTemplateData is what the templates of an existence check see: the
// data of a read of remoteKey (.remoteRef.key), with .remoteRef.remoteKey
// and an empty .remoteRef.secretKey besides, so that a url written for
// pushes renders for the check too.
func existsTemplateData(remoteKey, namespace string, secrets map[string]map[string]string, escape bool) map[string]any {
	data := templateData(provider.Ref{Key: remoteKey}, namespace, secrets, escape)
	ref := data["remoteRef"].(map[string]string)
	ref[pushVarRemoteKey] = ref["key"]
	ref[pushVarSecretKey] = ""
	return data
}

// pushedBytes is the value a push sends: the key's bytes, or the whole
// Secret as a JSON object of strings in key order, without HTML escaping
// (byte for byte as ESO). A whole Secret whose key or value is not UTF-8
// is refused: ESO would silently replace those bytes.
func pushedBytes(v provider.PushValue) ([]byte, error) {
	if !v.Whole() {
		return v.Value, nil
	}
	obj := make(map[string]string, len(v.Secret))
	for k, b := range v.Secret {
		if !utf8.ValidString(k) || !utf8.Valid(b) {
			return nil, fmt.Errorf("%w: key %q of the Secret is not UTF-8 text, so the whole Secret cannot be sent as a JSON object of strings; push its keys one by one (data[].match.secretKey)", provider.ErrInvalidPush, k)
		}
		obj[k] = string(b)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, fmt.Errorf("%w: encoding the Secret as JSON: %w", provider.ErrInvalidPush, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// pushRedactor is the client's redactor that also scrubs the pushed value
// (and, for a whole Secret, each of its values).
func (c *Client) pushRedactor(value []byte, v provider.PushValue) *redactor {
	values := []string{string(value)}
	for _, k := range slices.Sorted(maps.Keys(v.Secret)) {
		values = append(values, string(v.Secret[k]))
	}
	return c.redactor.with(values...)
}

// Inspect is ESO's existence check: the store's read request for
// ref.RemoteKey (with GET instead of a method that writes). A 404 is an
// absent record; any 2xx an existing one, which counts as keyferry's (a
// webhook has no mark, see the top of this file).
func (c *Client) Inspect(ctx context.Context, ref provider.PushRef) (provider.RemoteState, error) {
	if err := checkPushRef(ref); err != nil {
		return provider.RemoteState{}, err
	}
	doing := fmt.Sprintf("checking whether %q exists", ref.RemoteKey)
	method, body := existsMethod(c.method), c.tpls.body
	if method != c.method {
		body = nil // the store's body is that of its write
	}
	req, err := c.newRequest(ctx, requestSpec{
		method:      method,
		escaped:     existsTemplateData(ref.RemoteKey, c.namespace, c.secrets, true),
		raw:         existsTemplateData(ref.RemoteKey, c.namespace, c.secrets, false),
		body:        body,
		limit:       MaxPushTemplateBytes,
		redactor:    c.redactor,
		checkScheme: c.checkScheme,
	})
	if err != nil {
		return provider.RemoteState{}, fmt.Errorf("%s: %w", doing, err)
	}
	code, err := c.send(ctx, req, c.redactor, ref.RemoteKey, doing)
	switch {
	case err != nil:
		return provider.RemoteState{}, err
	case code == http.StatusNotFound:
		return provider.RemoteState{}, nil
	case code >= 200 && code <= 299:
		return provider.RemoteState{Exists: true, Managed: true, Unmarked: true}, nil
	default:
		return provider.RemoteState{}, fmt.Errorf("%s: %w", doing, statusError(&http.Response{StatusCode: code}, ref.RemoteKey, time.Now()))
	}
}

// existsMethod is the method of the existence check for a store whose
// read method is method: that method when it only reads (GET, HEAD), else
// GET.
func existsMethod(method string) string {
	if method == http.MethodHead {
		return http.MethodHead
	}
	return http.MethodGet
}

// Push sends v to the webhook. It always sends (a webhook cannot be read
// back to compare) and returns true once the webhook answered 2xx.
func (c *Client) Push(ctx context.Context, ref provider.PushRef, v provider.PushValue, _ provider.RemoteState) (bool, error) {
	doing := fmt.Sprintf("pushing %q", ref.RemoteKey)
	req, r, err := c.pushRequest(ctx, ref, v)
	if err != nil {
		return false, fmt.Errorf("%s: %w", doing, err)
	}
	code, err := c.send(ctx, req, r, ref.RemoteKey, doing)
	if err != nil {
		return false, err
	}
	if code < 200 || code > 299 {
		return false, fmt.Errorf("%s: %w", doing, pushStatusError(code, ref.RemoteKey))
	}
	return true, nil
}

// pushRequest renders the request that pushes v to ref, and the redactor
// that scrubs v from messages.
func (c *Client) pushRequest(ctx context.Context, ref provider.PushRef, v provider.PushValue) (*http.Request, *redactor, error) {
	if err := checkPushRef(ref); err != nil {
		return nil, nil, err
	}
	value, err := pushedBytes(v)
	if err != nil {
		return nil, nil, err
	}
	if value == nil {
		value = []byte{}
	}
	r := c.pushRedactor(value, v)
	s := requestSpec{
		method:   c.pushMethod,
		escaped:  pushTemplateData(ref.RemoteKey, v.SecretKey, value, c.secrets, true),
		raw:      pushTemplateData(ref.RemoteKey, v.SecretKey, value, c.secrets, false),
		body:     c.tpls.body,
		limit:    MaxPushTemplateBytes,
		redactor: r,
		checkScheme: func(u *url.URL) error {
			return r.wrap(c.checkPushHTTP(&url.URL{Scheme: u.Scheme, Host: u.Host}))
		},
	}
	if s.body == nil {
		// ESO's default body, {{ .remoteRef.<remoteKey> }}: the value.
		s.bodyBytes = value
	}
	req, err := c.newRequest(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	return req, r, nil
}

// Delete sends DELETE to the url rendered for ref.RemoteKey, without a
// body (ESO). A 404 counts as deleted. keyferry deletes only what a
// PushSecret recorded as pushed (status.syncedPushSecrets).
func (c *Client) Delete(ctx context.Context, ref provider.PushRef, _ provider.RemoteState) error {
	if err := checkPushRef(ref); err != nil {
		return err
	}
	doing := fmt.Sprintf("deleting %q", ref.RemoteKey)
	req, err := c.newRequest(ctx, requestSpec{
		method:      http.MethodDelete,
		escaped:     pushTemplateData(ref.RemoteKey, "", nil, c.secrets, true),
		raw:         pushTemplateData(ref.RemoteKey, "", nil, c.secrets, false),
		limit:       MaxPushTemplateBytes,
		redactor:    c.redactor,
		checkScheme: c.checkScheme,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", doing, err)
	}
	code, err := c.send(ctx, req, c.redactor, ref.RemoteKey, doing)
	switch {
	case err != nil:
		return err
	case code == http.StatusNotFound, code >= 200 && code <= 299:
		return nil
	default:
		return fmt.Errorf("%s: %w", doing, statusError(&http.Response{StatusCode: code}, ref.RemoteKey, time.Now()))
	}
}

// send sends req and returns the response's status code. The response
// body is drained (bounded) and never read into a value or a message. A
// throttling answer (429, or 503 with Retry-After) is an error, as for
// reads, so that the fetch layer backs off as the server asks.
func (c *Client) send(ctx context.Context, req *http.Request, r *redactor, key, doing string) (int, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, transportError(ctx, r, doing, err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if code := resp.StatusCode; code == http.StatusTooManyRequests || (code == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "") {
		return 0, fmt.Errorf("%s: %w", doing, statusError(resp, key, time.Now()))
	}
	return resp.StatusCode, nil
}

// pushStatusError maps a non-2xx answer to a push. It names the status,
// never the request or the response. A refusal of the request itself
// (400, 409, 412, 413, 415, 422) is provider.ErrInvalidPush, which does not
// count against the store's health; the rest maps as for reads, but a 404
// is not a missing value here.
func pushStatusError(code int, key string) error {
	status := fmt.Sprintf("%d %s", code, http.StatusText(code))
	switch code {
	case http.StatusBadRequest, http.StatusConflict, http.StatusPreconditionFailed, http.StatusRequestEntityTooLarge,
		http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return fmt.Errorf("%w: the webhook refused the push of %q: %s", provider.ErrInvalidPush, key, status)
	case http.StatusNotFound:
		return fmt.Errorf("%w: the webhook answered %s to the push of %q (check the store's url and method)", provider.ErrBadResponse, status, key)
	default:
		return statusError(&http.Response{StatusCode: code, Header: http.Header{}}, key, time.Now())
	}
}

// with returns a copy of r that also scrubs values (each at least
// minRedactLen long), in every escaped form a request carries them.
func (r *redactor) with(values ...string) *redactor {
	out := &redactor{values: slices.Clone(r.values)}
	for _, v := range values {
		if len(v) >= minRedactLen {
			out.values = append(out.values, v, escapeURLValue(v), url.QueryEscape(v), url.PathEscape(v))
		}
	}
	sort.Slice(out.values, func(i, j int) bool { return len(out.values[i]) > len(out.values[j]) })
	return out
}
