package unsupported

import (
	"fmt"
	"reflect"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The condition keyferry writes.
const (
	// ConditionReady is the condition type, as on every ESO kind.
	ConditionReady = "Ready"
	// ReasonUnsupported: keyferry serves the kind (the object is stored)
	// but does not implement it yet.
	ReasonUnsupported = "Unsupported"
)

// Message is the condition's (and the Event's) message for an object of k.
func Message(k Kind) string {
	return fmt.Sprintf("keyferry does not implement %s (%s) yet: the object is stored, but %s; see docs/status.md#kinds-keyferry-serves-but-does-not-implement-yet",
		k.Kind, k.GroupVersion(), k.Consequence)
}

// setUnsupported sets status.conditions' Ready condition of obj to
// False/Unsupported with msg, keeping the other conditions. It returns false
// when the condition already said exactly that (nothing to write).
// lastTransitionTime changes only when the status does.
func setUnsupported(obj *unstructured.Unstructured, msg string, now time.Time) bool {
	want := map[string]any{
		"type":               ConditionReady,
		"status":             string(metav1.ConditionFalse),
		"reason":             ReasonUnsupported,
		"message":            msg,
		"lastTransitionTime": now.UTC().Format(time.RFC3339),
	}
	var old []any
	if status, ok := obj.Object["status"].(map[string]any); ok {
		old, _ = status["conditions"].([]any)
	}
	conditions := make([]any, 0, len(old)+1)
	replaced := false
	for _, c := range old {
		m, ok := c.(map[string]any)
		if !ok {
			continue // not a condition: dropped
		}
		if m["type"] != ConditionReady || replaced {
			conditions = append(conditions, m)
			continue
		}
		replaced = true
		if m["status"] == want["status"] {
			if ltt, ok := m["lastTransitionTime"].(string); ok && ltt != "" {
				want["lastTransitionTime"] = ltt
			}
		}
		conditions = append(conditions, want)
	}
	if !replaced {
		conditions = append(conditions, want)
	}
	if reflect.DeepEqual(old, conditions) {
		return false
	}
	status, ok := obj.Object["status"].(map[string]any)
	if !ok {
		status = map[string]any{}
		obj.Object["status"] = status
	}
	status["conditions"] = conditions
	return true
}

// clearUnsupported removes obj's Ready condition when its reason is
// Unsupported (written by a keyferry that did not implement the kind yet),
// keeping every other condition. It returns false when there is none
// (nothing to write).
func clearUnsupported(obj *unstructured.Unstructured) bool {
	status, ok := obj.Object["status"].(map[string]any)
	if !ok {
		return false
	}
	old, ok := status["conditions"].([]any)
	if !ok {
		return false
	}
	kept := make([]any, 0, len(old))
	for _, c := range old {
		if m, ok := c.(map[string]any); ok && m["type"] == ConditionReady && m["reason"] == ReasonUnsupported {
			continue
		}
		kept = append(kept, c)
	}
	if len(kept) == len(old) {
		return false
	}
	status["conditions"] = kept
	return true
}
