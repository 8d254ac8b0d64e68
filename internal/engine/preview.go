package engine

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/keyferry/keyferry/internal/engine/values"
)

// Preview returns the Secret a plan would write, given the values its
// sources would fetch, without fetching or writing anything: data holds
// the keys the template sees (each spec.data secretKey and every key
// dataFrom would produce). The template renders as in a sync, with
// e.Templates (or a sandbox with the default limits); templateFrom
// ConfigMaps and Secrets are read with e.APIReader. keyferry render uses
// it to show the Secret an ExternalSecret produces offline.
func (e *Engine) Preview(ctx context.Context, plan Plan, data map[string][]byte) (*corev1.Secret, error) {
	d := &desired{data: make(map[string][]byte, len(data)), labels: map[string]string{}, annotations: map[string]string{}}
	named := make(map[string]bool, len(data))
	for k, v := range data {
		d.data[k] = v
		named[k] = true
	}
	if plan.Template != nil {
		if err := e.renderTemplate(ctx, plan, d); err != nil {
			return nil, err
		}
	}
	if err := checkKeys(d.data, named); err != nil {
		return nil, err
	}
	return e.newSecret(plan, d, Hash(plan.Target.Type, d.data, d.labels, d.annotations)), nil
}

// checkKeys refuses a key that is not a valid Secret key. Keys named by the
// spec or by remote names (named) may be quoted in the error; keys a
// template rendered may be derived from values and never are.
func checkKeys(data map[string][]byte, named map[string]bool) error {
	for k := range data {
		if values.ValidKey(k) {
			continue
		}
		if !named[k] {
			return fail(ReasonInvalidSpec, "the template rendered a key that is not a valid Secret key (allowed: letters, digits, '-', '_', '.')")
		}
		return fail(ReasonInvalidSpec, "key %q is not a valid Secret key (allowed: letters, digits, '-', '_', '.')", k)
	}
	return nil
}
