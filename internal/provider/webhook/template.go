package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// templates are the parsed templates of one store.
type templates struct {
	url      *template.Template
	body     *template.Template // nil when the body is empty
	jsonPath *template.Template // nil when no jsonPath is set
	headers  []headerTemplate
}

type headerTemplate struct {
	name string
	tpl  *template.Template
}

// funcMap is sprig's text functions (as in ESO's templates) without those
// that read the operator's environment or resolve host names.
func funcMap() template.FuncMap {
	fm := sprig.TxtFuncMap()
	for _, name := range []string{"env", "expandenv", "getHostByName"} {
		delete(fm, name)
	}
	return fm
}

func parseTemplate(field, text string) (*template.Template, error) {
	t, err := template.New(field).Funcs(funcMap()).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%w: parsing the %s template: %w", provider.ErrInvalidConfig, field, err)
	}
	return t, nil
}

func sortedHeaderNames(headers map[string]string) []string {
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func parseTemplates(p *esv1.WebhookProvider) (*templates, error) {
	var (
		ts  templates
		err error
	)
	if ts.url, err = parseTemplate("url", p.URL); err != nil {
		return nil, err
	}
	if p.Body != "" {
		if ts.body, err = parseTemplate("body", p.Body); err != nil {
			return nil, err
		}
	}
	if p.Result.JSONPath != "" {
		if ts.jsonPath, err = parseTemplate("result.jsonPath", p.Result.JSONPath); err != nil {
			return nil, err
		}
		// A path without template actions can be checked now.
		if !strings.Contains(p.Result.JSONPath, "{{") {
			if _, err := parseJSONPath(p.Result.JSONPath); err != nil {
				return nil, fmt.Errorf("%w: result.jsonPath: %w", provider.ErrInvalidConfig, err)
			}
		}
	}
	for _, name := range sortedHeaderNames(p.Headers) {
		t, err := parseTemplate("headers."+name, p.Headers[name])
		if err != nil {
			return nil, err
		}
		ts.headers = append(ts.headers, headerTemplate{name: name, tpl: t})
	}
	return &ts, nil
}

// templateData is what the templates see for one request:
//
//	.remoteRef.key, .remoteRef.version, .remoteRef.property, .remoteRef.namespace
//	.secrets.NAME.KEY    the data of the Secret listed under NAME in `secrets`
//	.NAME.KEY            the same, as ESO's templates write it
//
// With escape set (the URL), the remoteRef values are URL-escaped.
// remoteRef.property is always empty: keyferry applies the property to the
// fetched value itself.
func templateData(ref provider.Ref, namespace string, secrets map[string]map[string]string, escape bool) map[string]any {
	key, version := ref.Key, ref.Version
	if escape {
		key, version = escapeURLValue(key), escapeURLValue(version)
	}
	data := map[string]any{
		"remoteRef": map[string]string{
			"key":       key,
			"version":   version,
			"property":  "",
			"namespace": namespace,
		},
	}
	addSecrets(data, secrets)
	return data
}

// addSecrets adds the data of the Secrets listed in `secrets` to a
// template's data, as .secrets.NAME.KEY and as ESO's .NAME.KEY.
func addSecrets(data map[string]any, secrets map[string]map[string]string) {
	nested := make(map[string]map[string]string, len(secrets))
	for name, values := range secrets {
		nested[name] = values
	}
	data["secrets"] = nested
	// ESO's form; a Secret named "secrets" takes ESO's meaning.
	for name, values := range secrets {
		if name != "remoteRef" {
			data[name] = values
		}
	}
}

// escapeURLValue escapes a value for any part of a URL: like
// url.QueryEscape (so "/" becomes %2F, as in ESO), but a space becomes %20,
// which reads as a space in a path as well as in a query.
func escapeURLValue(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func execute(t *template.Template, data map[string]any) ([]byte, error) {
	return executeLimited(t, data, 0)
}

// errTooLarge stops a template whose output passes its bound.
var errTooLarge = errors.New("the rendered template is too large")

// executeLimited executes t, failing once its output passes limit bytes
// (0: no limit).
func executeLimited(t *template.Template, data map[string]any, limit int) ([]byte, error) {
	var buf bytes.Buffer
	var w io.Writer = &buf
	if limit > 0 {
		w = &limitWriter{w: &buf, left: limit}
	}
	if err := t.Execute(w, data); err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("%w (more than %d bytes)", errTooLarge, limit)
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// limitWriter writes to w until left bytes are written, then fails.
type limitWriter struct {
	w    io.Writer
	left int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.left {
		l.left = 0
		return 0, errTooLarge
	}
	l.left -= len(p)
	return l.w.Write(p)
}

// redactor removes known credential values from messages, so that an error
// from a template function or a transport never carries them.
type redactor struct {
	values []string
}

// minRedactLen is the shortest value scrubbed from messages: shorter ones
// would mangle every message and are not secrets worth the name.
const minRedactLen = 4

func newRedactor(secrets map[string]map[string]string) *redactor {
	r := &redactor{}
	for _, values := range secrets {
		for _, v := range values {
			if len(v) >= minRedactLen {
				r.values = append(r.values, v, escapeURLValue(v), url.QueryEscape(v), url.PathEscape(v))
			}
		}
	}
	// Longest first, so that a value containing another is removed whole.
	sort.Slice(r.values, func(i, j int) bool { return len(r.values[i]) > len(r.values[j]) })
	return r
}

func (r *redactor) redact(msg string) string {
	for _, v := range r.values {
		msg = strings.ReplaceAll(msg, v, "[redacted]")
	}
	return msg
}

// redactedError keeps the chain of err (for errors.Is and errors.As) but
// shows a message from which credentials were removed.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func (r *redactor) wrap(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: r.redact(err.Error()), err: err}
}

// templateError describes a failed template execution without its data.
func (r *redactor) templateError(field string, err error) error {
	return fmt.Errorf("%w: executing the %s template: %w", provider.ErrInvalidConfig, field, r.wrap(err))
}
