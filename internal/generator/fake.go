package generator

import genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"

// Fake returns spec.data as the generator's output, as ESO's Fake
// generator does: every key with its value, as bytes. An empty spec gives an
// empty map.
func Fake(spec genv1alpha1.FakeSpec) map[string][]byte {
	out := make(map[string][]byte, len(spec.Data))
	for k, v := range spec.Data {
		out[k] = []byte(v)
	}
	return out
}
