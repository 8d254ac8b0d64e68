package engine

import (
	"context"
	"errors"
	"maps"

	"github.com/keyferry/keyferry/internal/engine/render"
	"github.com/keyferry/keyferry/internal/engine/values"
)

// RenderPush renders a PushSecret's spec.template over the data of its
// source Secret, as ESO does before a push: the templates see each key of
// the Secret as .KEY (a string), templateFrom renders first and
// template.data after it (so template.data wins for a key both render),
// and what renders into Data replaces or adds to the Secret's keys, in a
// copy: the Secret itself is never changed. Labels and annotations render
// too (a failure among them fails the push) but are not returned: no
// provider keyferry pushes to writes them.
//
// It runs in the engine's sandbox, under the same size, step and time
// budget as an ExternalSecret's template; templateFrom ConfigMaps and
// Secrets are read from namespace ns with e.APIReader. A failure is
// TemplateFailed or TemplateBudgetExceeded and never quotes a value.
func (e *Engine) RenderPush(ctx context.Context, ns string, t Template, data map[string][]byte) (map[string][]byte, error) {
	var items []render.Item
	for _, from := range t.From {
		more, err := e.templateFrom(ctx, ns, from)
		if err != nil {
			return nil, err
		}
		items = append(items, more...)
	}
	// t.Items holds the templateFrom literals ahead of template.data, so
	// template.data still renders after every templateFrom source, as in
	// ESO (literals render after the ConfigMaps and Secrets).
	items = append(items, t.Items...)
	out, err := e.sandbox().Render(ctx, items, data)
	if err != nil {
		return nil, templateError(err)
	}
	merged := make(map[string][]byte, len(data)+len(out.Data))
	maps.Copy(merged, data)
	maps.Copy(merged, out.Data)
	return merged, nil
}

// KeyRewriter returns the function a rewrite applies to a key: a regexp
// replacement, or a transform template over .value (the key) rendered in
// the engine's sandbox, exactly as dataFrom rewrites of an ExternalSecret.
// PushSecret's dataTo renames the keys it pushes with it.
func (e *Engine) KeyRewriter(rw Rewrite) (values.Rewriter, error) {
	r, err := e.rewriter(rw)
	if err != nil {
		return nil, fail(ReasonInvalidSpec, "%v", err)
	}
	return func(k string) (string, error) {
		out, err := r(k)
		if err != nil {
			var ee *Error
			if errors.As(err, &ee) {
				return "", err
			}
			return "", templateError(err)
		}
		return out, nil
	}, nil
}
