package engine

import "context"

// Generate makes new values with the generator src names, as a sync of an
// ExternalSecret in namespace ns would: a namespaced generator of ns or a
// ClusterGenerator, with the same admission of its credentials. It is what
// a PushSecret's selector.generatorRef calls; the caller keeps the values
// (the PushSecret's local copy), so nothing here caches or records them.
// Errors are the engine's (*Error, with a generator reason), naming
// src.Field, never a value.
func (e *Engine) Generate(ctx context.Context, ns string, src GeneratorSource) (map[string][]byte, error) {
	return e.runGenerator(ctx, ns, &src)
}
