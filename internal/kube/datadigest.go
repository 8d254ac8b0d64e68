package kube

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// AnnotationCachedDataDigest marks a Secret as the operator's cache holds
// it: its values were replaced by their digest (DataDigest), which is the
// annotation's value. The annotation exists only in the cache; the API
// server never sees it, because a cached copy is only ever used to decide
// that a Secret needs no write (see engine.apply).
const AnnotationCachedDataDigest = "keyferry.io/cached-data-digest"

// DataDigest returns a digest of a Secret's values: SHA-256 over the keys
// in order, each key and value prefixed with its length, so that no two
// different maps share an encoding. A nil map and an empty one have the
// same digest.
func DataDigest(data map[string][]byte) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	var n [8]byte
	for _, k := range keys {
		binary.BigEndian.PutUint64(n[:], uint64(len(k)))
		h.Write(n[:])
		h.Write([]byte(k))
		binary.BigEndian.PutUint64(n[:], uint64(len(data[k])))
		h.Write(n[:])
		h.Write(data[k])
	}
	return base64.RawStdEncoding.EncodeToString(h.Sum(nil))
}

// DigestSecretData replaces s's values by their digest, kept in
// AnnotationCachedDataDigest: the cache of the Secrets keyferry manages
// then holds no secret value, and about half a kilobyte less for each
// of them. A Secret already digested (the annotation set, no values) is
// left as it is, so the transform may run twice; a Secret that carries the
// annotation on the API server with no values then keeps its value as the
// digest, which at worst costs a read from the API server on each sync
// (engine.apply) and never a wrong write.
func DigestSecretData(s *corev1.Secret) {
	if _, ok := CachedDataDigest(s); ok {
		return
	}
	d := DataDigest(s.Data)
	if s.Annotations == nil {
		s.Annotations = make(map[string]string, 1)
	}
	s.Annotations[AnnotationCachedDataDigest] = d
	s.Data, s.StringData = nil, nil
}

// CachedDataDigest returns the digest of s's values when s is a copy from
// the cache that holds the digest instead of the values.
func CachedDataDigest(s *corev1.Secret) (string, bool) {
	d, ok := s.Annotations[AnnotationCachedDataDigest]
	return d, ok && len(s.Data) == 0
}

// SameData says whether a and b hold the same values; either may be a copy
// from the cache that holds their digest instead.
func SameData(a, b *corev1.Secret) bool {
	da, digestA := CachedDataDigest(a)
	db, digestB := CachedDataDigest(b)
	if !digestA && !digestB {
		return maps.EqualFunc(a.Data, b.Data, bytes.Equal)
	}
	if !digestA {
		da = DataDigest(a.Data)
	}
	if !digestB {
		db = DataDigest(b.Data)
	}
	return da == db
}
